"""MLflow autologging for nbtrain's loop: what `mlflow.keras.autolog()` does for
`keras.Model.fit`, done for a `FitLoop` (which never calls `fit`).

MLflow's Keras autolog patches `keras.Model.fit`: the patch starts an MLflow run
unless one is active, logs `fit`'s arguments as parameters, adds MLflow's
`MlflowCallback` (optimizer config and model summary at `on_train_begin`, the
logs of each epoch at `on_epoch_end`, validation logs at `on_test_end`), logs
the model after `fit` returns, and ends the run it started.  `MlflowAutolog`
is that patch and that callback in one callback, driven by nbtrain's callback
contract instead of one call of `fit`: the MLflow run begins at `on_train_begin`
and ends at the training's real end (`on_train_end`); a user's stop is no end,
so a run across any stop and resume is one MLflow run, and so is a continue
after a finish (the same run is reopened; parameters are logged once).  A failed
pass marks the run FAILED, as MLflow's patch does when `fit` raises
(`on_train_failed`, nbtrain's hook); a resume after the failure goes on with it
(`on_train_resume`).

Each hook logs with an explicit run id (MLflow's active run is per thread, and a
Run trains each pass on a new thread), so nothing is left on any thread's run
stack.  `mlflow.tensorflow.autolog()` (which patches the same `fit` with Keras 3)
is honoured the same way, with its logging options; its TensorBoard and
checkpoint options are not reproduced.

Nothing here imports MLflow: `autolog_callbacks` looks in `sys.modules`, as
autologging can only be on if the user imported MLflow.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import sys
import warnings
from typing import Any

import keras
import numpy as np

from nbtrain.engine.hyperparameters import scalar_value

FLAVORS = ("keras", "tensorflow")  # the autolog integrations that patch keras.Model.fit
# What MLflow's patch leaves out of the parameters (mlflow/keras/autologging.py).
UNLOGGED = ("self", "x", "y", "callbacks", "validation_data", "verbose", "batch_size")


def _active_flavor() -> str | None:
    from mlflow.utils.autologging_utils import autologging_is_disabled

    for flavor in FLAVORS:
        if not autologging_is_disabled(flavor):
            return flavor
    return None


def autolog_callbacks(config: Any) -> list[keras.callbacks.Callback]:
    """The callbacks that stand for MLflow's patched `fit`, if Keras autologging is on.

    Costs one `sys.modules` look-up when MLflow is not imported.

    Args:
        config: the loop's `FitConfig` (its arguments become the run's parameters).

    Returns:
        `[MlflowAutolog(...)]` when `mlflow.keras.autolog()` or
        `mlflow.tensorflow.autolog()` is on and the user passed no MLflow callback
        of their own; else `[]`.
    """
    mlflow = sys.modules.get("mlflow")
    if mlflow is None:
        return []
    try:
        return _callbacks(mlflow, config)
    except Exception as exc:  # as MLflow's autologging: tracking never fails the training
        warnings.warn(f"MLflow autologging is off for this training: {exc!r}", stacklevel=3)
        return []


def _callbacks(mlflow: Any, config: Any) -> list[keras.callbacks.Callback]:
    flavor = _active_flavor()
    if flavor is None:
        return []
    from mlflow.keras.callback import MlflowCallback
    from mlflow.utils.autologging_utils import get_autologging_config

    if any(isinstance(c, MlflowCallback) for c in config.callbacks):
        return []  # the user logs explicitly (MLflow's own patch refuses both)
    options = {name: get_autologging_config(flavor, name, default) for name, default in (
        ("log_models", True), ("log_every_epoch", True), ("log_every_n_steps", None),
        ("exclusive", False), ("extra_tags", None), ("log_model_signatures", True),
        ("registered_model_name", None), ("save_exported_model", False))}
    user_run = mlflow.active_run()
    if user_run is not None and options["exclusive"]:
        return []  # exclusive: autologged content never goes to a user's run
    options["datasets"] = array_datasets(config) if get_autologging_config(
        flavor, "log_datasets", True) else []
    cls = MlflowAutologSteps if options["log_every_n_steps"] else MlflowAutolog
    return [cls(flavor, fit_params(config), user_run.info.run_id if user_run else None, **options)]


def array_datasets(config: Any) -> list[tuple[str, Any, Any]]:
    """The NumPy training and validation arrays, as MLflow's patch logs them
    (`(context, features, targets)`, contexts "train" and "eval"); data of other
    kinds is not logged (MLflow's patch logs only arrays and TensorFlow data)."""
    found = []
    for context, source in (("train", config.data), ("eval", config.validation)):
        x, y = getattr(source, "x", None), getattr(source, "y", None)
        if isinstance(x, np.ndarray) and (y is None or isinstance(y, np.ndarray)):
            found.append((context, x, y))
    return found


def fit_params(config: Any) -> dict:
    """`keras.Model.fit`'s arguments for a `FitConfig`, as MLflow's patch logs them:
    every argument of `fit`'s signature but the data, callbacks and verbosity, with
    its default where nbtrain has no value, and `batch_size` when the data has one.

    Args:
        config: a `FitConfig`.
    """
    params = {name: p.default for name, p in inspect.signature(keras.Model.fit).parameters.items()
              if name not in UNLOGGED and p.default is not inspect.Parameter.empty}
    params.update(epochs=config.epochs, initial_epoch=config.initial_epoch,
                  steps_per_epoch=config.steps_per_epoch, shuffle=config.shuffle,
                  validation_steps=config.validation_steps,
                  validation_freq=config.validation_freq, class_weight=config.class_weight)
    if "validation_batch_size" in params:
        params["validation_batch_size"] = config.validation_batch_size
    batch_size = getattr(config.data, "batch_size", None)
    if isinstance(batch_size, int):  # arrays: the ArraySequence holds batch_size and shuffle
        params["batch_size"] = batch_size
        params["shuffle"] = bool(getattr(config.data, "shuffle", config.shuffle))
    return params


def _safe(hook: Any) -> Any:
    """As MLflow's autologging: a tracking error is a warning, never the training's failure."""

    @functools.wraps(hook)
    def safe(self: Any, *args: Any, **kwargs: Any) -> None:
        try:
            hook(self, *args, **kwargs)
        except Exception as exc:
            warnings.warn(f"MLflow autologging failed in {hook.__name__}: {exc!r}",
                          stacklevel=2)

    return safe


class MlflowAutolog(keras.callbacks.Callback):
    """MLflow's Keras autologging for one nbtrain training (see the module's docstring).

    Args:
        flavor: the autolog integration that is on (`"keras"` or `"tensorflow"`).
        fit_args: `fit`'s arguments to log as parameters (see `fit_params`).
        user_run_id: the run active in the caller's thread when the loop was made
            (logged into, never ended), or None to start one.
        **options: the integration's autolog options (`log_models`, `extra_tags`, ...).
    """

    def __init__(self, flavor: str, fit_args: dict, user_run_id: str | None = None,
                 **options: Any):
        super().__init__()
        self.flavor, self.fit_args, self.options = flavor, fit_args, options
        self.run_id, self.managed = user_run_id, user_run_id is None
        self.model_id: str | None = None
        self.begun = False
        self.failed = False  # marked FAILED by a failed pass, until the training goes on

    @staticmethod
    def _client() -> Any:
        import mlflow

        return mlflow.MlflowClient()

    @_safe
    def on_train_begin(self, logs: dict | None = None) -> None:
        """Start (or reopen) the MLflow run; log the parameters, the optimizer's
        config and the model summary the first time."""
        import mlflow

        client = self._client()
        if self.run_id is None:
            from mlflow.utils.mlflow_tags import MLFLOW_AUTOLOGGING

            tags = {MLFLOW_AUTOLOGGING: self.flavor, **(self.options["extra_tags"] or {})}
            with mlflow.start_run(tags=tags) as run:  # experiment and context tags as MLflow resolves them
                self.run_id = run.info.run_id
        if self.managed:
            client.update_run(self.run_id, status="RUNNING")
        if self.options["log_models"]:  # each segment's model, as each fit logs one
            self.model_id = mlflow.initialize_logged_model(
                "model", source_run_id=self.run_id).model_id
        if self.begun:
            return  # a continue after a finish: the same run goes on
        self.begun = True
        if self.options["datasets"]:
            self._log_datasets(mlflow)
        mlflow.log_params({k: _param(v) for k, v in self.fit_args.items()}, run_id=self.run_id)
        optimizer = {f"optimizer_{k}": _param(v) for k, v in self.model.optimizer.get_config().items()}
        mlflow.log_params(optimizer, run_id=self.run_id)
        summary: list[str] = []
        self.model.summary(print_fn=lambda line, *a, **k: summary.append(line))
        mlflow.log_text("\n".join(summary), "model_summary.txt", run_id=self.run_id)

    @_safe
    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        """Log the epoch's logs, at step `epoch` (MLflow's `MlflowCallback`)."""
        if self.options["log_every_epoch"] and logs:
            self._log(logs, step=epoch)

    @_safe
    def on_test_end(self, logs: dict | None = None) -> None:
        """Log a validation's logs as `validation_<name>` (MLflow's `MlflowCallback`)."""
        if logs:
            self._log({f"validation_{k}": v for k, v in logs.items()})

    @_safe
    def on_train_end(self, logs: dict | None = None) -> None:
        """The training's real end: log the model (if autolog logs models) and end
        the run MLflow's patch would have ended."""
        import mlflow

        if self.options["log_models"]:
            self._log_model(mlflow)
        if self.managed:
            self._client().set_terminated(self.run_id, "FINISHED")

    @_safe
    def on_train_failed(self, exception: BaseException) -> None:
        """A pass failed (nbtrain's hook: no `on_train_end` follows): the run is marked
        FAILED, as MLflow's patch ends its run when `fit` raises; a resume of the
        training (`on_train_resume`) goes on with the same run."""
        if self.managed and self.run_id is not None:
            self._client().set_terminated(self.run_id, "FAILED")
            self.failed = True

    @_safe
    def on_train_resume(self) -> None:
        """An interrupted or failed training goes on: a failed run is running again."""
        if self.failed:
            self.failed = False
            self._client().update_run(self.run_id, status="RUNNING")

    def _log(self, metrics: dict, step: int | None = None) -> None:
        import mlflow

        scalars = {k: float(v) for k, v in metrics.items() if _is_scalar(v)}
        mlflow.log_metrics(scalars, step=step, run_id=self.run_id, model_id=self.model_id)

    def _log_model(self, mlflow: Any) -> None:
        """`mlflow.keras.log_model` links the model to the active run of this thread:
        make the run active here for it, and leave its status as it was."""
        from mlflow.keras.save import log_model
        from mlflow.keras.utils import get_model_signature

        signature = None
        if self.options["log_model_signatures"]:
            try:
                signature = get_model_signature(self.model)
            except Exception:  # MLflow's patch too logs the model without it then
                signature = None
        with self._active_here(mlflow):
            log_model(self.model, name="model", signature=signature, model_id=self.model_id,
                      save_exported_model=self.options["save_exported_model"],
                      registered_model_name=self.options["registered_model_name"])

    def _log_datasets(self, mlflow: Any) -> None:
        """The training and validation arrays' metadata, as MLflow's patch logs them."""
        from mlflow.data.code_dataset_source import CodeDatasetSource
        from mlflow.data.numpy_dataset import from_numpy
        from mlflow.entities import LoggedModelInput
        from mlflow.tracking.context import registry

        source = CodeDatasetSource(tags=registry.resolve_tags())
        model = LoggedModelInput(model_id=self.model_id) if self.model_id else None
        with self._active_here(mlflow):
            for context, x, y in self.options["datasets"]:
                mlflow.log_input(from_numpy(features=x, targets=y, source=source), context,
                                 model=model)

    @contextlib.contextmanager
    def _active_here(self, mlflow: Any) -> Any:
        """The run made active on this thread for MLflow functions that log only to
        the active run (a pass's thread has none); popped after, its status kept
        RUNNING (`on_train_end` sets it FINISHED when it is nbtrain's to end)."""
        active = mlflow.active_run()
        if active is not None and active.info.run_id == self.run_id:
            yield
            return
        mlflow.start_run(run_id=self.run_id, nested=active is not None)
        try:
            yield
        finally:
            mlflow.end_run()  # pops it from this thread's stack (and marks it FINISHED)
            self._client().update_run(self.run_id, status="RUNNING")


class MlflowAutologSteps(MlflowAutolog):
    """`MlflowAutolog` with `log_every_n_steps`: the training logs every n steps too
    (a batch hook only when asked for: without it a batch costs nothing here)."""

    @_safe
    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        """Log the batch's logs every `log_every_n_steps` optimizer iterations."""
        iteration = int(scalar_value(self.model.optimizer.iterations))
        if logs and iteration % self.options["log_every_n_steps"] == 0:
            self._log(logs, step=iteration)


def _is_scalar(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _param(value: Any) -> Any:
    """A parameter value MLflow can store (its own patch logs `str()` of anything)."""
    return value if isinstance(value, (int, float, str, bool, type(None))) else str(value)
