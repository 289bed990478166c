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
from nbtrain.engine.callbacks import to_python
from nbtrain.engine.distributed.replicas import (
    distribute_batch,
    is_multi_worker,
    multi_worker_step,
    replicas,
)


def find_step_function(function: Any) -> Any:
    """The `tf.function` running one step, inside Keras's `train_function`.

    Keras's `train_function`, given a Python iterator, calls its inner
    `one_step_on_data` tf.function once per batch.  Calling that function's
    concrete function for the batch's signature directly skips TensorFlow's
    per-call polymorphic dispatch (about half of a small model's step time).
    Returns None where Keras is built differently (or runs eagerly); the caller
    then calls `train_function` as `model.fit` would.
    """
    for cell in getattr(function, "__closure__", None) or ():
        try:
            value = cell.cell_contents
        except ValueError:
            continue
        if getattr(value, "__name__", "") == "one_step_on_data":
            inner = getattr(value, "__wrapped__", value)
            if hasattr(inner, "get_concrete_function"):
                return inner
    return None


def signature(batch: Any) -> tuple:
    """A hashable key of a batch's structure, shapes and dtypes."""
    import tensorflow as tf

    leaves = tf.nest.flatten(batch)
    flat = isinstance(batch, tuple) and len(leaves) == len(batch)
    structure = None if flat else repr(tf.nest.map_structure(lambda _: 0, batch))
    return structure, tuple(
        None if leaf is None else (tuple(leaf.shape), leaf.dtype) if hasattr(leaf, "dtype")
        else (type(leaf), leaf)
        for leaf in leaves
    )


class CompiledSteps:
    """Runs `model.train_function` or `model.test_function` on lists of batches.

    Under `MultiWorkerMirroredStrategy` it runs `multi_worker_step` instead, and
    a train step carries the words of its `carrier` (a
    `distributed.CollectiveGate`), when the gate left some, in the same call.

    Args:
        model: a compiled Keras 3 model (TensorFlow backend).
        mode: `"train"` or `"test"`.
    """

    carrier: Any = None

    def __init__(self, model: Any, mode: str):
        self.model = model
        self.mode = mode
        self._built = False
        self._function = None
        self._carrying: Any = None  # the multi-worker step that also all-reduces control words

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
        self._step = find_step_function(self._function)
        self._concrete: dict = {}
        self._strategy = self.model.distribute_strategy if replicas(self.model) > 1 else None
        self._multi_worker = self._step is not None and is_multi_worker(self._strategy)
        if self._multi_worker:
            self._step = multi_worker_step(self.model, self.mode)
        self._built = True

    def _call(self, batch: tuple) -> Any:
        """Run the step traced for this batch's structure, shapes and dtypes (cached);
        under a multi-replica strategy, on the batch split across the replicas."""
        key = signature(batch)
        if self._strategy is not None:
            batch = distribute_batch(self._strategy, batch)
        if self.carrier is not None and self._multi_worker and self.mode == "train":
            words = self.carrier.take_outgoing()
            if words is not None:
                return self._call_carrying(key, batch, words)
        function = self._concrete.get(key)
        if function is None:
            function = self._concrete[key] = self._step.get_concrete_function(batch)
        return function(batch)

    def _call_carrying(self, key: tuple, batch: Any, words: Any) -> Any:
        """Run the step, its all-reduce also summing the carrier's control words."""
        import tensorflow as tf

        if self._carrying is None:
            self._carrying = (multi_worker_step(self.model, self.mode, words=True), {})
        step, concrete = self._carrying
        words = tf.constant(words)
        function = concrete.get(key)
        if function is None:
            function = concrete[key] = step.get_concrete_function(batch, words)
        logs, reduced = function(batch, words)
        self.carrier.bring_back(reduced)
        return logs

    @property
    def steps_per_execution(self) -> int:
        return int(getattr(self.model, "steps_per_execution", 1) or 1)

    def reset(self) -> None:
        self.model.reset_metrics()

    @staticmethod
    def prepare(batch: tuple) -> tuple:
        """NumPy leaves as tensors: the compiled step then skips its own conversion.

        Runs on a worker thread when there is one, off the training thread's path.
        """
        import tensorflow as tf

        def convert(value):
            if isinstance(value, np.ndarray):
                return tf.convert_to_tensor(value)
            if isinstance(value, dict):
                return {k: convert(v) for k, v in value.items()}
            if isinstance(value, (list, tuple)):
                return type(value)(convert(v) for v in value)
            return value

        return convert(batch)

    def run(self, batches: list[tuple]) -> Any:
        """Run the step on each `(x, y, sample_weight)` batch; return the logs (tensors)."""
        if not self._built:
            self._prepare(batches[0])
        if self._step is None:
            return self._function(iter(batches))
        logs = None
        for batch in batches:
            logs = self._call(batch)
        return logs

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
        for metric, values in zip(self.model.metrics, state, strict=True):
            for variable, value in zip(metric.variables, values, strict=True):
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

    @staticmethod
    def prepare(batch: tuple) -> tuple:
        return batch

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
        # Batch logs are the epoch's running averages, as on the compiled path (Keras 3).
        return self.result(logs)

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
