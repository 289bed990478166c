"""`nbtrain.fit`: build a `Run`, attach a display, start it, return at once.

This module sits above both `nbtrain.run` (which knows nothing of widgets) and
`nbtrain.dashboard` (which knows nothing of how training runs): it is the one
place that puts them together, so neither has to import the other.
"""

from __future__ import annotations

import sys
import threading
from typing import Any, TextIO

import keras

from nbtrain.dashboard.notebook import in_notebook, register_run_display
from nbtrain.engine.progress import format_logs
from nbtrain.engine.training import FitLoop
from nbtrain.run import Run


class TextStatus(keras.callbacks.Callback):
    """A plain-text display of a Run: a line per change of state and per epoch.

    Used when there is no dashboard (outside a notebook, or before
    `nbtrain.dashboard` exists).  Lines are written by whichever thread made
    the change; a lock keeps them whole.

    Args:
        run: the run to describe (not yet started).
        stream: where to write (default `sys.stdout`, looked up at each write).

    Example:

    ```python
    run = nbtrain.Run(model, sequence, epochs=3)
    TextStatus.for_run(run)
    run.start()
    ```
    """

    def __init__(self, run: Run, stream: TextIO | None = None):
        super().__init__()
        self.run = run
        self._stream = stream
        self._lock = threading.Lock()

    @classmethod
    def for_run(cls, run: Run, stream: TextIO | None = None) -> TextStatus:
        """Make a TextStatus and attach it to `run` (a listener and a callback)."""
        status = cls(run, stream)
        run.add_listener(status.on_state)
        run.add_callback(status)
        return status

    def _write(self, line: str) -> None:
        with self._lock:
            stream = self._stream or sys.stdout
            stream.write(line + "\n")
            stream.flush()

    def describe(self) -> str:
        """The run's state and position in words, e.g. `paused at epoch 2/5, batch 13/100`."""
        run = self.run
        epoch = min(run.epoch + 1, run.epochs)
        text = f"nbtrain: {run.state} at epoch {epoch}/{run.epochs}"
        if run.state not in ("finished", "created"):
            steps = run.steps
            text += f", batch {run.batch}/{steps if steps else '?'}"
        if run.state == "failed" and run.exception is not None:
            text += f": {type(run.exception).__name__}: {run.exception}"
        return text

    def on_state(self, run: Run, old: str, new: str) -> None:
        """Listener: one line per change of state (the first start is not announced)."""
        if old == "created":
            return
        self._write(self.describe())

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        line = f"Epoch {epoch + 1}/{self.run.epochs}"
        steps, batch = self.run.steps, self.run.batch
        if steps and batch < steps:  # a callback's stop mid-epoch (a user's stop is no epoch end)
            line += f" (interrupted after {batch}/{steps} batches)"
        metrics = format_logs(logs)
        self._write(line + (f" - {metrics}" if metrics else ""))


def attach_display(run: Run, display: Any = None) -> Any:
    """Attach a display to a run that has not started.

    Args:
        run: the run.
        display: None: the dashboard in a notebook kernel (a text status until
            `nbtrain.dashboard` provides `Dashboard.for_run`), a text status
            elsewhere, nothing on a worker of a multi-worker job other than the
            chief; True: the dashboard if available, else the text status;
            False: nothing.

    Returns:
        The display object, or None.

    Example:

    ```python
    attach_display(run, display=False)   # None
    ```
    """
    if display is False:
        return None
    if display not in (None, True):
        raise ValueError(f"`display` must be None, True or False, got {display!r}.")
    if display is None and not getattr(run, "is_chief", True):
        return None  # the chief shows the job; the other workers run headless
    if display is True or in_notebook():
        from nbtrain.dashboard import Dashboard

        register_run_display()
        mine = [cb for cb in run.callbacks if isinstance(cb, Dashboard)]
        if mine:  # the user passed a Dashboard in `callbacks`: bind and show that one
            mine[0].bind(run)
            mine[0].display()
            return mine[0]
        return Dashboard.for_run(run)
    return TextStatus.for_run(run)


def fit(model: Any, x: Any, y: Any = None, *, batch_size: int | None = None, epochs: int = 1,
        steps_per_epoch: int | None = None, validation_data: Any = None,
        validation_steps: int | None = None, validation_freq: Any = 1, callbacks: Any = None,
        class_weight: dict | None = None, workers: int = 1, use_multiprocessing: bool = False,
        max_queue_size: int = 10, shuffle: bool = True, initial_epoch: int = 0,
        display: bool | None = None) -> Run:
    """Train `model` in a background thread and return its `Run` at once.

    Bad input is refused here, in the calling thread, before anything starts.
    Steer the run with `run.pause()`, `run.resume()`, `run.stop()`,
    `run.resume(epochs=N)`, `with run.paused(): ...`; `run.wait()` blocks for
    the History (and re-raises a training error).

    Args:
        model: a compiled `keras.Model` (not already training in another Run).
        x: an `nbtrain.Sequence`, a `keras.utils.PyDataset`, a generator (with
            `steps_per_epoch`), arrays (with `y` and `batch_size`) or a
            `tf.data.Dataset`.
        y: targets, only when `x` is arrays.
        batch_size: samples per batch, only for arrays (default 32).
        epochs: index of the final epoch.
        steps_per_epoch: batches per epoch; None means the Sequence's length
            or the dataset's cardinality (required for a generator).
        validation_data: `(x, y)`, `(x, y, sample_weight)`, a Sequence, a
            PyDataset, a generator (with `validation_steps`) or a `tf.data.Dataset`.
        validation_steps: batches per validation.
        validation_freq: validate every N epochs, or at these 1-indexed epochs.
        callbacks: `keras.callbacks.Callback`s (run on the training thread).
        class_weight: dict mapping class index to a loss weight.
        workers: 0 reads data on the training thread; N >= 1 uses N workers.
        use_multiprocessing: the workers are processes.
        max_queue_size: batches read ahead.
        shuffle: reshuffle array samples, or a Sequence's batch order, each epoch.
        initial_epoch: the epoch to start at.
        display: None shows the dashboard in a notebook (plain text elsewhere;
            nothing on a multi-worker job's workers other than the chief);
            True always tries the dashboard; False shows nothing.

    Returns:
        The started `nbtrain.Run`.

    Example:

    ```python
    run = nbtrain.fit(model, x_train, y_train, batch_size=64, epochs=10,
                      validation_data=(x_val, y_val))
    run.pause(); run.resume()
    history = run.wait()
    ```
    """
    run = Run(model, x, y, batch_size=batch_size, epochs=epochs, steps_per_epoch=steps_per_epoch,
              validation_data=validation_data, validation_steps=validation_steps,
              validation_freq=validation_freq, callbacks=callbacks, class_weight=class_weight,
              workers=workers, use_multiprocessing=use_multiprocessing,
              max_queue_size=max_queue_size, shuffle=shuffle, initial_epoch=initial_epoch)
    attach_display(run, display)
    run.start()
    return run


def fit_generator(model: Any, generator: Any, steps_per_epoch: int | None = None,
                  epochs: int = 1, verbose: Any = 1, callbacks: Any = None,
                  validation_data: Any = None, validation_steps: int | None = None,
                  validation_freq: Any = 1, class_weight: dict | None = None,
                  max_queue_size: int = 10, workers: int = 1, use_multiprocessing: bool = False,
                  shuffle: bool = True, initial_epoch: int = 0) -> keras.callbacks.History:
    """Train `model` on batches from a generator or a Sequence (Keras 2's
    `fit_generator`), blocking until done.

    The loop is `nbtrain.engine.fit_generator`; in a notebook `verbose=1`
    shows the live dashboard (without controls: the cell is busy), elsewhere a
    text progress bar.

    Args:
        model: a compiled `keras.Model`.
        generator: an `nbtrain.Sequence`, a `keras.utils.PyDataset`, or an
            iterator of `(x, y)` / `(x, y, sample_weight)` tuples.
        steps_per_epoch: batches per epoch; None means `len(sequence)`, read
            again after every epoch; required for a generator.
        epochs: index of the final epoch.
        verbose: 0 silent, 1 progress (dashboard in a notebook), 2 a line per epoch.
        callbacks: `keras.callbacks.Callback`s.
        validation_data: `(x, y)`, `(x, y, sample_weight)`, a Sequence or a generator.
        validation_steps: batches per validation (required for a generator).
        validation_freq: validate every N epochs, or at these 1-indexed epochs.
        class_weight: dict mapping class index to a loss weight.
        max_queue_size: batches read ahead.
        workers: 0 reads on the training thread; N >= 1 uses N workers.
        use_multiprocessing: the workers are processes.
        shuffle: shuffle a Sequence's batch order every epoch.
        initial_epoch: epoch at which to start.

    Returns:
        A `keras.callbacks.History`.

    Example:

    ```python
    history = nbtrain.fit_generator(model, sequence, epochs=5, workers=2)
    ```
    """
    from nbtrain.dashboard.notebook import progress_for

    progress = progress_for(verbose)
    try:
        loop = FitLoop(model, generator, steps_per_epoch, epochs, verbose, callbacks,
                       validation_data, validation_steps, validation_freq, class_weight,
                       max_queue_size, workers, use_multiprocessing, shuffle, initial_epoch,
                       progress=progress)
    except BaseException:
        close = getattr(progress, "close", None)
        if close is not None:
            close()  # no widgets left behind when bad input is refused
        raise
    return loop.run()


__all__ = ["TextStatus", "attach_display", "fit", "fit_generator", "in_notebook"]
