"""The step-runner interface every backend implements, and the part the fast
runners share (the epoch's averages kept in the model's own metric objects)."""

from __future__ import annotations

from typing import Any

import numpy as np

from nbtrain.engine.callbacks import to_python


class StepRunner:
    """The interface between the loop and a backend's train or test step.

    The loop (`FitLoop`, `evaluate_stream`) drives a runner this way:

    - `prepare(batch)` once per `(x, y, sample_weight)` batch, on the data
      worker thread when there is one (it is the enqueuer's transform): the
      place for anything that does not need the model's step, such as turning
      NumPy arrays into the backend's tensors and computing what the step call
      will look up;
    - `run(items)` on the training thread with `steps_per_execution` prepared
      items (fewer at the end of an epoch), returning the logs of the last
      step: a dict of the epoch's running averages, whose values may be backend
      tensors (callbacks that need numbers get them through
      `callbacks.to_python`);
    - `reset()` at the start of an epoch, or `restore(state)` with a
      `snapshot()` taken when the epoch was interrupted, to continue its
      averages; `result(last_logs)` at the end of an epoch: the epoch's logs as
      Python numbers, averaged over its batches weighted by batch size;
    - `sync()` wherever a user or a callback may look at the model (the loop
      holding in its gate, the end of a pass, whatever way it ends): a runner
      that keeps the training state outside the model between steps (JAX)
      writes it back there; the next `run()` takes it out again, so whatever
      changed the model meanwhile (weights set, a learning rate assigned, an
      evaluation) is what training goes on with.  `reset`, `restore`,
      `snapshot` and `result` sync first.

    `run` must accept items `prepare` did not make (raw batches), preparing
    them itself.  Implementations: `steps.CompiledSteps` (TensorFlow),
    `backends.jax_steps.JaxSteps`, `backends.torch_steps.TorchSteps` and
    `steps.BatchSteps` (any backend, through `train_on_batch`).

    Args:
        model: a compiled Keras model.
        mode: `"train"` or `"test"`.
    """

    steps_per_execution: int = 1
    """Batches the loop hands to one `run()` call."""

    def __init__(self, model: Any, mode: str):
        self.model = model
        self.mode = mode

    def prepare(self, batch: tuple) -> Any:
        """Make `batch` ready for `run` (any thread).  The default keeps it as it is."""
        return batch

    def run(self, items: list) -> Any:
        """Run the step on each item in order; return the last step's logs."""
        raise NotImplementedError

    def sync(self) -> None:
        """Put the training state back into the model (the default keeps it there)."""

    def reset(self) -> None:
        """Start the averages of a new epoch."""
        raise NotImplementedError

    def result(self, last_logs: Any) -> dict:
        """The epoch's logs so far, as Python numbers."""
        raise NotImplementedError

    def snapshot(self) -> Any:
        """The state of the epoch's averages, for `restore`."""
        raise NotImplementedError

    def restore(self, state: Any) -> None:
        """Continue the averages from a `snapshot()`."""
        raise NotImplementedError


class ModelMetricSteps(StepRunner):
    """A runner whose averages are the model's own metric objects (Keras 3's
    metrics accumulate over the epoch; the loss tracker is weighted by batch
    size, as Keras 2's BaseLogger was), as `model.fit`'s are."""

    @property
    def steps_per_execution(self) -> int:
        return int(getattr(self.model, "steps_per_execution", 1) or 1)

    def reset(self) -> None:
        self.sync()
        self.model.reset_metrics()

    def result(self, last_logs: Any) -> dict:
        """The accumulated logs: the model's metric results (averages over the steps run)."""
        self.sync()
        metrics = self.model.get_metrics_result()
        if isinstance(last_logs, dict) and set(last_logs) == set(metrics):
            return to_python(metrics)
        return to_python(last_logs)

    def snapshot(self) -> list:
        """The metric state, to continue an average after other work reset it."""
        self.sync()
        return [[v.numpy() for v in m.variables] for m in self.model.metrics]

    def restore(self, state: list) -> None:
        self.sync()
        for metric, values in zip(self.model.metrics, state, strict=True):
            for variable, value in zip(metric.variables, values, strict=True):
                variable.assign(value)


def to_tensors(value: Any, convert: Any) -> Any:
    """A batch with its NumPy leaves turned into tensors by `convert` (tuples,
    lists, namedtuples and dicts kept as they are)."""
    if isinstance(value, np.ndarray):
        return convert(value)
    if isinstance(value, (list, tuple)):
        items = [to_tensors(v, convert) for v in value]
        if type(value) in (tuple, list):
            return type(value)(items)
        return type(value)(*items) if hasattr(value, "_fields") else type(value)(items)
    if isinstance(value, dict):
        return {k: to_tensors(v, convert) for k, v in value.items()}
    return value


__all__ = ["ModelMetricSteps", "StepRunner", "to_tensors"]
