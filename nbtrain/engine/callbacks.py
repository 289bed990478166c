"""The callback list the loop drives: Keras's own `CallbackList`, run synchronously,
and calling batch hooks only on the callbacks that define them."""

from __future__ import annotations

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
