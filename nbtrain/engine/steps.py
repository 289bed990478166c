"""Step runners: how one execution of the train or test step is run.

`CompiledSteps` calls the model's compiled step function (`model.train_function`
/ `model.test_function`, the ones `model.fit` uses) directly on Python batches:
metrics accumulate in the model's own metric objects, logs stay tensors until a
callback needs them, and `steps_per_execution` is respected.  It is what makes
this loop faster than `model.fit` on a PyDataset.

`BatchSteps` uses only the public `train_on_batch` / `test_on_batch` and averages
the per-batch logs itself, weighted by batch size (Keras 2's BaseLogger).  It
is the fallback for backends or models where the compiled path does not apply.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nbtrain.engine.batches import batch_size_of


def to_python(logs: dict) -> dict:
    """Logs with every value a Python float (or list of floats)."""
    out = {}
    for key, value in (logs or {}).items():
        value = np.asarray(value)
        out[key] = float(value) if value.ndim == 0 else value.tolist()
    return out


class CompiledSteps:
    """Runs `model.train_function` or `model.test_function` on lists of batches.

    Args:
        model: a compiled Keras 3 model (TensorFlow backend).
        mode: `"train"` or `"test"`.
    """

    def __init__(self, model: Any, mode: str):
        self.model = model
        self.mode = mode
        self._built = False
        self._function = None

    @staticmethod
    def applies(model: Any) -> bool:
        """True when the model exposes the compiled step functions of Keras 3 on TensorFlow."""
        import keras

        return (
            keras.backend.backend() == "tensorflow"
            and hasattr(model, "make_train_function")
            and hasattr(model, "_maybe_symbolic_build")
            and hasattr(model, "get_metrics_result")
        )

    def _prepare(self, batch: tuple) -> None:
        self.model._maybe_symbolic_build(data_batch=batch)
        if self.mode == "train":
            self.model.make_train_function()
            self._function = self.model.train_function
        else:
            self.model.make_test_function()
            self._function = self.model.test_function
        self._built = True

    @property
    def steps_per_execution(self) -> int:
        return int(getattr(self.model, "steps_per_execution", 1) or 1)

    def reset(self) -> None:
        self.model.reset_metrics()

    def run(self, batches: list[tuple]) -> Any:
        """Run the step on each `(x, y, sample_weight)` batch; return the logs (tensors)."""
        if not self._built:
            self._prepare(batches[0])
        return self._function(iter(batches))

    def result(self, last_logs: Any) -> dict:
        """The accumulated logs: the model's metric results (averages over the steps run)."""
        metrics = self.model.get_metrics_result()
        if isinstance(last_logs, dict) and set(last_logs) == set(metrics):
            return to_python(metrics)
        return to_python(last_logs)

    def snapshot(self) -> list:
        """The metric state, to continue an average after other work reset it."""
        return [[v.numpy() for v in m.variables] for m in self.model.metrics]

    def restore(self, state: list) -> None:
        for metric, values in zip(self.model.metrics, state):
            for variable, value in zip(metric.variables, values):
                variable.assign(value)


class BatchSteps:
    """Runs `train_on_batch` / `test_on_batch` per batch and averages the logs
    over the epoch, weighted by batch size.

    Args:
        model: a compiled Keras model.
        mode: `"train"` or `"test"`.
    """

    steps_per_execution = 1

    def __init__(self, model: Any, mode: str):
        self.model = model
        self.mode = mode
        self._sums: dict = {}
        self._count = 0

    def reset(self) -> None:
        self._sums, self._count = {}, 0

    def run(self, batches: list[tuple]) -> dict:
        logs: dict = {}
        for x, y, sample_weight in batches:
            if self.mode == "train":
                logs = self.model.train_on_batch(x, y, sample_weight=sample_weight, return_dict=True)
            else:
                logs = self.model.test_on_batch(x, y, sample_weight=sample_weight, return_dict=True)
            n = batch_size_of(x)
            for key, value in logs.items():
                self._sums[key] = self._sums.get(key, 0.0) + float(value) * n
            self._count += n
        return logs

    def result(self, last_logs: Any) -> dict:
        if not self._count:
            return to_python(last_logs)
        return {key: total / self._count for key, total in self._sums.items()}

    def snapshot(self) -> tuple:
        return dict(self._sums), self._count

    def restore(self, state: tuple) -> None:
        self._sums, self._count = dict(state[0]), state[1]


def make_steps(model: Any, mode: str, compiled: bool | None = None):
    """The step runner for `model`: compiled when it applies (or when forced)."""
    if compiled is None:
        compiled = CompiledSteps.applies(model)
    return CompiledSteps(model, mode) if compiled else BatchSteps(model, mode)
