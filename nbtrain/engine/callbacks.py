"""The callback list the loop drives: Keras's own `CallbackList`, run synchronously,
and calling batch hooks only on the callbacks that define them; and the rule for
a training that goes on after it ended (`begin_segment`)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import keras
import numpy as np


def _defines(callback: Any, *names: str) -> bool:
    return any(not getattr(getattr(callback, name), "_is_default", False) for name in names)


def to_python(logs: dict | None) -> dict:
    """Logs with tensors and NumPy values turned into Python numbers (lists for
    non-scalars): what callbacks and the History receive."""
    out = {}
    for key, value in (logs or {}).items():
        value = np.asarray(value)
        out[key] = value.item() if value.ndim == 0 else value.tolist()
    return out


class LoopCallbacks(keras.callbacks.CallbackList):
    """A `keras.callbacks.CallbackList` for nbtrain's loop.

    Everything runs on the loop's thread (no executor threads to outlive a
    failed run), and per-batch logs are converted to Python numbers only when
    some callback reads them: with only a `History`, a batch costs no
    device-to-host copy.

    Args:
        callbacks: the user's callbacks (a list, or None).
        model: the model being trained.
        history: a `keras.callbacks.History` to record into (one is added if None).
        **params: passed to every callback's `set_params` (`epochs`, `steps`, `verbose`).
    """

    def __init__(self, callbacks: Any = None, model: Any = None,
                 history: keras.callbacks.History | None = None, **params: Any):
        if isinstance(callbacks, keras.callbacks.CallbackList):
            callbacks = callbacks.callbacks
        callbacks = list(callbacks or [])
        for callback in callbacks:
            if not isinstance(callback, keras.callbacks.Callback):
                raise TypeError(
                    f"callbacks must be keras.callbacks.Callback instances, got "
                    f"{type(callback).__name__}."
                )
        if history is not None and history not in callbacks:
            callbacks.append(history)
        super().__init__(callbacks, add_history=True, add_progbar=False, model=model, **params)
        self._index()

    def _configure_async_dispatch(self, callbacks: Any) -> None:
        """Keep every hook on the loop's thread."""

    def _index(self) -> None:
        cbs = self.callbacks
        self._train_begin = [c for c in cbs if _defines(c, "on_train_batch_begin", "on_batch_begin")]
        self._train_end = [c for c in cbs if _defines(c, "on_train_batch_end", "on_batch_end")]
        self._train_end_logs = [(c, bool(getattr(c, "accepts_tensor_logs", False)))
                                for c in self._train_end]
        self._test_begin = [c for c in cbs if _defines(c, "on_test_batch_begin")]
        self._test_end = [c for c in cbs if _defines(c, "on_test_batch_end")]
        self._predict_end = [c for c in cbs if _defines(c, "on_predict_batch_end")]

    def append(self, callback: keras.callbacks.Callback) -> None:
        self.callbacks.append(callback)
        callback.set_model(self.model)
        if self.params:
            callback.set_params(self.params)
        self._index()

    def batch_hooks(self, mode: str = "train") -> tuple[Any, Any]:
        """The `(begin, end)` batch hooks of `mode` (`"train"` or `"test"`) the
        loop should call, each None when no callback defines it: a loop over
        callbacks with epoch hooks only then costs nothing per batch.
        """
        if mode == "train":
            return (self.on_train_batch_begin if self._train_begin else None,
                    self.on_train_batch_end if self._train_end else None)
        return (self.on_test_batch_begin if self._test_begin else None,
                self.on_test_batch_end if self._test_end else None)

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        for callback in self._train_begin:
            callback.on_train_batch_begin(batch, logs=logs)

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        # Callbacks declaring `accepts_tensor_logs = True` read the logs lazily
        # (the dashboard reads them once per plot bucket): no device-to-host copy
        # per batch for them.  The others get Python numbers, converted once.
        converted = None
        for callback, tensors in self._train_end_logs:
            if tensors:
                callback.on_train_batch_end(batch, logs=logs)
            else:
                if converted is None:
                    converted = to_python(logs)
                callback.on_train_batch_end(batch, logs=converted)

    def on_test_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        for callback in self._test_begin:
            callback.on_test_batch_begin(batch, logs=logs)

    def on_test_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self._test_end:
            logs = to_python(logs)
            for callback in self._test_end:
                callback.on_test_batch_end(batch, logs=logs)

    def on_predict_batch_end(self, batch: int, logs: dict | None = None) -> None:
        for callback in self._predict_end:
            callback.on_predict_batch_end(batch, logs=logs)


@contextlib.contextmanager
def _continuing(callbacks: list) -> Iterator[None]:
    """File-writing callbacks go on where they were while they begin again."""
    restore = []
    for callback in callbacks:
        if isinstance(callback, keras.callbacks.CSVLogger) and not callback.append:
            callback.append = True  # append, without a second header

            def undo(cb=callback):
                cb.append = False
            restore.append(undo)
        elif isinstance(callback, keras.callbacks.TensorBoard):
            steps = getattr(callback, "_global_train_batch", None)
            if steps is not None:  # batch summaries continue at the next step, not at 1

                def undo(cb=callback, steps=steps):
                    cb._global_train_batch = steps
                restore.append(undo)
    try:
        yield
    finally:
        for undo in restore:
            undo()


def begin_segment(callbacks: LoopCallbacks) -> None:
    """Begin the callbacks again for a training that goes on after it ended.

    After `on_train_end` (the last epoch done, or a callback's stop), training
    further (`Run.resume(epochs=N)`, `FitLoop.run()` again) is a new training
    *segment*: the callbacks are set up and begun again as for a new
    `model.fit(initial_epoch=...)` (`set_model`, `on_train_begin`: EarlyStopping
    and ReduceLROnPlateau start counting afresh), except that nothing already
    written is truncated or rewritten: `CSVLogger` appends to its file (one
    header, one row per epoch), and `TensorBoard`'s batch steps continue.

    Args:
        callbacks: the loop's `LoopCallbacks`.
    """
    callbacks.set_model(callbacks.model)
    with _continuing(callbacks.callbacks):
        callbacks.on_train_begin()


def _tensorboards(callbacks: Any) -> list:
    if isinstance(callbacks, keras.callbacks.CallbackList):
        callbacks = callbacks.callbacks
    return [cb for cb in callbacks if isinstance(cb, keras.callbacks.TensorBoard)]


def suspend(callbacks: Any) -> None:
    """An interruption, on the thread of the pass that ends: put on disk what
    file-writing callbacks buffer (what the completed epochs logged is readable
    while stopped; `CSVLogger` and `ModelCheckpoint` write synchronously), and
    leave this thread's summary state as it was (`TensorBoard` keeps its default
    writer in TensorFlow's thread-local state, and the next pass, or
    `on_train_end`, may run on another thread).

    Args:
        callbacks: a `LoopCallbacks`, or a list of callbacks.
    """
    for callback in _tensorboards(callbacks):
        with contextlib.suppress(Exception):
            if callback.update_freq != "epoch" and callback._prev_summary_state:
                callback._pop_writer()
        for writer in list(getattr(callback, "_writers", {}).values()):
            with contextlib.suppress(Exception):
                writer.flush()


def carry_on(callbacks: Any) -> None:
    """The training goes on after `suspend` (on the thread of the next pass, or
    of `on_train_end`): `TensorBoard` makes its writer the default again here.

    Args:
        callbacks: a `LoopCallbacks`, or a list of the callbacks that were suspended.
    """
    for callback in _tensorboards(callbacks):
        if callback.update_freq != "epoch":
            callback._push_writer(callback._train_writer, callback._global_train_batch)
