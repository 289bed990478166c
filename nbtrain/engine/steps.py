"""Step runners: how one execution of the train or test step is run.

`StepRunner` (in `backends.base`) is the interface the loop drives; every
backend's runner implements it, and `make_steps` picks one: `CompiledSteps`
on TensorFlow, `backends.jax_steps.JaxSteps` on JAX,
`backends.torch_steps.TorchSteps` on PyTorch.  `CompiledSteps` calls the
model's compiled step function (the one `model.fit` uses) directly on prepared
batches: metrics accumulate in the model's own metric objects, logs stay
tensors until a callback needs them, and `steps_per_execution` is respected.
It is what makes this loop faster than `model.fit` on a PyDataset.

`BatchSteps` uses only the public `train_on_batch` / `test_on_batch` and averages
the per-batch logs itself, weighted by batch size (Keras 2's BaseLogger).  It
is the fallback for backends or models where the compiled path does not apply.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from nbtrain.engine.backends.base import ModelMetricSteps, StepRunner, to_tensors
from nbtrain.engine.batches import batch_size_of
from nbtrain.engine.callbacks import to_python
from nbtrain.engine.distributed.replicas import (
    distribute_batch,
    is_multi_worker,
    multi_worker_step,
    replicas,
)


@functools.cache
def _host_only() -> bool:
    """True when TensorFlow sees no GPU: a batch's tensors then stay on the host."""
    import tensorflow as tf

    return not tf.config.list_logical_devices("GPU")


_ALIGN = 64  # bytes: TensorFlow's kernels assume Eigen's alignment (unaligned input aborts)


def _aligned_copy(array: np.ndarray) -> np.ndarray:
    """A C-contiguous copy of `array` whose data starts on a 64-byte boundary."""
    raw = np.empty(array.nbytes + _ALIGN, np.uint8)
    start = -raw.ctypes.data % _ALIGN
    out = raw[start:start + array.nbytes].view(array.dtype).reshape(array.shape)
    np.copyto(out, array, casting="no")
    return out


def host_tensor(array: np.ndarray) -> Any:
    """`array` as a TensorFlow tensor of its own (a copy: the caller may reuse
    the array, as generators that fill one buffer do).

    On the host the copy is NumPy's (64-byte aligned, as TensorFlow's kernels
    require), handed to TensorFlow through DLPack without a second copy: about
    5 us for a small batch leaf against 40 us for `tf.constant`, which spends
    them in Python on the GIL (measured, TF 2.21, 2 cores; for a 4 MB leaf 0.5
    ms against 0.7 ms).  `tf.constant` for what DLPack does not carry here
    (strings, objects, complex numbers, non-native byte order) and where a GPU
    is visible (`tf.constant` places the tensor on it).
    """
    import tensorflow as tf

    if _host_only() and array.dtype.kind in "biuf" and array.dtype.isnative:
        try:
            return tf.experimental.dlpack.from_dlpack(_aligned_copy(array).__dlpack__())
        except Exception:  # noqa: BLE001  (a dtype or shape DLPack refuses: the slow path)
            pass
    return tf.constant(array)


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


def signature(batch: Any, leaves: list | None = None) -> tuple:
    """A hashable key of a batch's structure, shapes and dtypes.

    Args:
        batch: a batch (nested tuples, lists and dicts of arrays or tensors).
        leaves: `tf.nest.flatten(batch)`, when the caller has it already.
    """
    import tensorflow as tf

    if leaves is None:
        leaves = tf.nest.flatten(batch)
    flat = isinstance(batch, tuple) and len(leaves) == len(batch)
    structure = None if flat else repr(tf.nest.map_structure(lambda _: 0, batch))
    return structure, tuple(
        None if leaf is None else (tuple(leaf.shape), leaf.dtype) if hasattr(leaf, "dtype")
        else (type(leaf), leaf)
        for leaf in leaves
    )


class PreparedBatch(tuple):
    """An `(x, y, sample_weight)` batch made ready for `CompiledSteps.run` on a
    worker thread: the tuple itself (NumPy arrays turned into tensors), plus

    Attributes:
        batch: the same batch as a plain tuple (what TensorFlow traces).
        key: its `signature`: which traced step it runs on.
        flat: its tensors in the order the traced step takes them.
    """

    def __new__(cls, batch: tuple, key: tuple, flat: list) -> PreparedBatch:
        self = super().__new__(cls, batch)
        self.batch, self.key, self.flat = batch, key, flat
        return self


class _Traced:
    """One traced step (a concrete function) and how to call it."""

    __slots__ = ("function", "captures")

    def __init__(self, function: Any, flat_call: bool):
        self.function = function
        # The concrete function's captured inputs (the model's, optimizer's and
        # metrics' variables) never change once traced: collected once, not per call.
        # None: call it the public way, with the structured batch.
        self.captures = function.captured_inputs if flat_call else None


def _takes_flat(function: Any, item: PreparedBatch) -> bool:
    """True when `item.flat` is exactly what `function` binds `item.batch` to.

    A `ConcreteFunction` called with a structured batch binds it to its
    signature, flattens it and checks every tensor against its trace (about a
    tenth of a small model's step); the prepared batch has done all of that on
    the worker thread.  Checked once per traced signature: same identity, same
    count (an aliased input, the same tensor passed twice, is traced once).
    """
    try:
        function_type = function.function_type
        expected = function_type.unpack_inputs(function_type.bind(item.batch))
        if not hasattr(function, "_call_flat") or len(function.inputs) != (
                len(item.flat) + len(function.captured_inputs)):
            return False
    except Exception:  # noqa: BLE001 - another TensorFlow: call it the public way
        return False
    return len(expected) == len(item.flat) and all(
        a is b for a, b in zip(expected, item.flat, strict=True))


class CompiledSteps(ModelMetricSteps):
    """Runs `model.train_function` or `model.test_function` on lists of batches.

    The fast path: `prepare` (on the worker thread) converts a batch to
    tensors, computes its signature and flattens it; `run` looks up the step
    traced for that signature and calls it on the flat tensors.  So the
    training thread does no conversion, no flattening and no dispatch.

    Under `MultiWorkerMirroredStrategy` it runs `multi_worker_step` instead, and
    a train step carries the words of its `carrier` (a
    `distributed.CollectiveGate`), when the gate left some, in the same call.

    Args:
        model: a compiled Keras 3 model (TensorFlow backend).
        mode: `"train"` or `"test"`.
    """

    carrier: Any = None

    def __init__(self, model: Any, mode: str):
        super().__init__(model, mode)
        self._built = False
        self._function = None
        self._step = None
        self._traced: dict = {}
        self._strategy = None
        self._carrying: Any = None  # the multi-worker step that also all-reduces control words
        import tensorflow as tf

        self._tf = tf

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
        self._traced = {}
        self._strategy = self.model.distribute_strategy if replicas(self.model) > 1 else None
        self._multi_worker = self._step is not None and is_multi_worker(self._strategy)
        if self._multi_worker:
            self._step = multi_worker_step(self.model, self.mode)
        self._built = True

    def _trace(self, item: PreparedBatch) -> _Traced:
        """The step traced for this item's signature (traced on first use)."""
        function = self._step.get_concrete_function(item.batch)
        traced = self._traced[item.key] = _Traced(function, _takes_flat(function, item))
        return traced

    def _call(self, item: PreparedBatch) -> Any:
        """Run the step traced for this batch's structure, shapes and dtypes;
        under a multi-replica strategy, on the batch split across the replicas."""
        if self._strategy is not None:
            return self._call_distributed(item)
        traced = self._traced.get(item.key) or self._trace(item)
        if traced.captures is not None:
            return traced.function._call_flat(item.flat, traced.captures)
        return traced.function(item.batch)

    def _call_distributed(self, item: PreparedBatch) -> Any:
        key, batch = item.key, distribute_batch(self._strategy, item.batch)
        if self.carrier is not None and self._multi_worker and self.mode == "train":
            words = self.carrier.take_outgoing()
            if words is not None:
                return self._call_carrying(key, batch, words)
        function = self._traced.get(key)
        if function is None:
            function = self._traced[key] = self._step.get_concrete_function(batch)
        return function(batch)

    def _call_carrying(self, key: tuple, batch: Any, words: Any) -> Any:
        """Run the step, its all-reduce also summing the carrier's control words."""
        tf = self._tf
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

    def prepare(self, batch: tuple) -> PreparedBatch:
        """NumPy leaves as tensors, the signature and the flat tensors: the
        training thread then only calls the traced step.

        Runs on a worker thread when there is one, off the training thread's path.
        """
        tf = self._tf
        batch = to_tensors(batch, host_tensor)
        leaves = tf.nest.flatten(batch)
        return PreparedBatch(batch, signature(batch, leaves),
                             [leaf for leaf in leaves if isinstance(leaf, tf.Tensor)])

    def run(self, items: list) -> Any:
        """Run the step on each prepared `(x, y, sample_weight)` batch; return the
        logs (tensors)."""
        items = [item if type(item) is PreparedBatch else self.prepare(item) for item in items]
        if not self._built:
            self._prepare(items[0].batch)
        if self._step is None:
            return self._function(iter([item.batch for item in items]))
        logs = None
        for item in items:
            logs = self._call(item)
        return logs


class BatchSteps(StepRunner):
    """Runs `train_on_batch` / `test_on_batch` per batch and averages the logs
    over the epoch, weighted by batch size.

    Args:
        model: a compiled Keras model.
        mode: `"train"` or `"test"`.
    """

    def __init__(self, model: Any, mode: str):
        super().__init__(model, mode)
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


def fast_runner() -> type | None:
    """The compiled-step runner of the Keras backend in use (None for another backend)."""
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        return CompiledSteps
    if backend == "jax":
        from nbtrain.engine.backends.jax_steps import JaxSteps

        return JaxSteps
    if backend == "torch":
        from nbtrain.engine.backends.torch_steps import TorchSteps

        return TorchSteps
    return None


def make_steps(model: Any, mode: str, compiled: bool | None = None) -> StepRunner:
    """The step runner for `model`: the backend's compiled-step runner where it
    applies (or when forced with `compiled=True`), else `BatchSteps`.

    Args:
        model: a compiled Keras model.
        mode: `"train"` or `"test"`.
        compiled: True forces the backend's fast runner, False `BatchSteps`;
            None picks the fast runner where its `applies(model)`.
    """
    if compiled is not False:
        fast = fast_runner()
        if fast is not None and (compiled or fast.applies(model)):
            return fast(model, mode)
    return BatchSteps(model, mode)
