"""Text progress: Keras's own display (`keras.callbacks.ProgbarLogger` and
`keras.utils.Progbar`), so `verbose=1` and `verbose=2` print exactly what
`model.fit` prints on the same data.

Two things differ from `model.fit`, neither visible in the text: the bar is
redrawn at most 10 times a second (Keras's default is 20, which floods a
notebook's output at high step rates), and the logs of a batch that is not
drawn are never copied from the device.  The metrics are shown in the order
`model.fit` shows them: Keras's `CallbackList` hands every callback its logs
sorted by name (`accuracy: ... - loss: ...`), and the bar keeps the order of
the first batch it draws.

`evaluate_generator` and `predict_generator` show the bar `model.evaluate` and
`model.predict` show (`verbose=1`), or their one final line (`verbose=2`).
"""

from __future__ import annotations

import contextlib
import time
from typing import Any, TextIO

import keras

from nbtrain.engine.callbacks import to_python


def keras_logs(logs: Any) -> dict:
    """`logs` as Keras's `CallbackList` hands them to a callback in `model.fit`:
    Python numbers, nested dicts flattened, sorted by name.

    Example:

    ```python
    keras_logs({"loss": np.float32(0.5), "accuracy": 1})   # {'accuracy': 1, 'loss': 0.5}
    ```
    """
    flat: dict = {}
    for key, value in to_python(logs).items():
        if isinstance(value, dict):
            flat.update(keras_logs(value))
        else:
            flat[key] = value
    return dict(sorted(flat.items()))


class TextProgress(keras.callbacks.ProgbarLogger):
    """Keras's `ProgbarLogger`, redrawn at most `1 / interval` times a second.

    `verbose=1` is the bar `model.fit(verbose=1)` shows (with the same
    `Epoch i/N` line, ETA, time per step and metrics); `verbose=2` is the one
    line per epoch of `model.fit(verbose=2)`.  Validation runs silently, as in
    `fit`; outside a fit (`evaluate_generator`, `predict_generator`) the test
    and predict loops show their own bar.

    Args:
        verbose: 1 for the bar, 2 for a line per epoch.
        stream: where to write (default `sys.stdout`; Keras writes through
            `keras.utils.io_utils.print_msg`, so a stream given here replaces
            `sys.stdout` while a line is written).
        interval: minimum seconds between two redraws of the bar.

    Example:

    ```python
    nbtrain.fit_generator(model, sequence, epochs=3, verbose=0,
                          callbacks=[TextProgress(verbose=2)])
    ```
    """

    accepts_tensor_logs = True  # logs are copied to Python only for a batch that is drawn

    def __init__(self, verbose: int = 1, stream: TextIO | None = None, interval: float = 0.1):
        super().__init__()
        self.verbose = verbose
        self._wanted = verbose
        self.stream = stream
        self.interval = interval
        self._drawn = 0.0

    def _output(self) -> Any:
        return (contextlib.redirect_stdout(self.stream) if self.stream is not None
                else contextlib.nullcontext())

    def set_params(self, params: dict) -> None:
        super().set_params({**params, "verbose": self._wanted})

    def _maybe_init_progbar(self) -> None:
        if self.progbar is None:
            super()._maybe_init_progbar()
            self.progbar.interval = self.interval

    def _update_progbar(self, batch: int, logs: Any = None) -> None:
        self._maybe_init_progbar()
        self.seen = batch + 1
        if self.verbose != 1:
            return
        now = time.time()
        if now - self._drawn < self.interval:
            return
        self._drawn = now
        with self._output():
            self.progbar.update(self.seen, list(keras_logs(logs).items()), finalize=False)

    def _finalize_progbar(self, logs: Any) -> None:
        self._drawn = 0.0
        self._maybe_init_progbar()
        with self._output():
            super()._finalize_progbar(keras_logs(logs))

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        with self._output():
            super().on_epoch_begin(epoch, logs)


def make_progress(verbose: Any) -> keras.callbacks.Callback | None:
    """The progress callback for a `verbose` value (None for 0).

    Example:

    ```python
    make_progress(2)   # TextProgress(verbose=2)
    ```
    """
    from nbtrain.engine.config import check_verbose

    verbose = check_verbose(verbose)
    return TextProgress(verbose) if verbose else None


__all__ = ["TextProgress", "keras_logs", "make_progress"]
