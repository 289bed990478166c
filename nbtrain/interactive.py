"""`nbtrain.fit`: build a `Run`, attach a display, start it, return at once.

This module sits above both `nbtrain.run` (which knows nothing of widgets) and
`nbtrain.dashboard` (which knows nothing of how training runs): it is the one
place that puts them together, so neither has to import the other.
"""

from __future__ import annotations

import atexit
import sys
import threading
import weakref
from typing import Any, TextIO

import keras

from nbtrain.dashboard.notebook import in_notebook, register_run_display
from nbtrain.engine.config import check_verbose, fit_config
from nbtrain.engine.progress import TextProgress, format_logs
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

    def __init__(self, run: Run, stream: TextIO | None = None, epoch_lines: bool = True):
        super().__init__()
        self.run = run
        self._stream = stream
        self.epoch_lines = epoch_lines
        self._lock = threading.Lock()

    @classmethod
    def for_run(cls, run: Run, stream: TextIO | None = None,
                epoch_lines: bool = True) -> TextStatus:
        """Make a TextStatus and attach it to `run` (a listener and a callback).

        Args:
            run: the run, not yet started.
            stream: where to write (default `sys.stdout`).
            epoch_lines: also write a line per epoch (False when Keras's own
                progress display shows the epochs).
        """
        status = cls(run, stream, epoch_lines)
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
        if not self.epoch_lines:
            return
        line = f"Epoch {epoch + 1}/{self.run.epochs}"
        steps, batch = self.run.steps, self.run.batch
        if steps and batch < steps:  # stopped mid-epoch: the epoch goes on after a resume
            line += f" (interrupted after {batch}/{steps} batches)"
        metrics = format_logs(logs)
        self._write(line + (f" - {metrics}" if metrics else ""))


def attach_display(run: Run, display: Any = None, verbose: Any = "auto") -> Any:
    """Attach a display to a run that has not started.

    Args:
        run: the run.
        display: None: the dashboard in a notebook kernel, a text display
            elsewhere, nothing on a worker of a multi-worker job other than the
            chief; True: the dashboard; False: nothing.
        verbose: the text display (outside a notebook): `"auto"` a line per
            epoch and per change of state; 1 Keras's progress bar and 2 Keras's
            line per epoch (what `model.fit` prints), each with the state lines;
            0 nothing.

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
    text = check_verbose(verbose) if verbose != "auto" else "auto"
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
    if text == 0:
        return None
    if text == "auto":
        return TextStatus.for_run(run)
    status = TextStatus.for_run(run, epoch_lines=False)
    run.add_callback(TextProgress(verbose=text))
    return status


def fit(model: Any, x: Any, y: Any = None, *, batch_size: int | None = None, epochs: int = 1,
        verbose: Any = "auto", callbacks: Any = None, validation_split: float = 0.0,
        validation_data: Any = None, shuffle: bool = True, class_weight: dict | None = None,
        sample_weight: Any = None, initial_epoch: int = 0, steps_per_epoch: int | None = None,
        validation_steps: int | None = None, validation_batch_size: int | None = None,
        validation_freq: Any = 1, workers: int = 1, use_multiprocessing: bool = False,
        max_queue_size: int = 10, display: bool | None = None) -> Run:
    """Train `model` in a background thread and return its `Run` at once.

    Takes every argument of `model.fit`, with Keras's meaning, plus Keras 2's
    data arguments (`workers`, `use_multiprocessing`, `max_queue_size`) and
    `display`.  Bad input is refused here, in the calling thread, before any
    callback or worker starts.  Steer the run with `run.pause()`,
    `run.resume()`, `run.stop()`, `run.resume(epochs=N)`,
    `with run.paused(): ...`; `run.wait()` blocks for the History (and
    re-raises a training error).

    Args:
        model: a compiled `keras.Model` (not already training in another Run).
        x: arrays (a list or dict of arrays for several inputs) with `y`, an
            `nbtrain.Sequence`, a `keras.utils.PyDataset`, a generator (with
            `steps_per_epoch`) or a `tf.data.Dataset`.
        y: targets, only when `x` is arrays.
        batch_size: samples per batch, only for arrays (default 32).
        epochs: index of the final epoch: trains epochs `initial_epoch` to `epochs - 1`.
        verbose: the text display outside a notebook: `"auto"` a line per epoch
            and per change of state, 1 Keras's progress bar, 2 Keras's line per
            epoch (both with the state lines), 0 nothing. In a notebook the
            dashboard shows the run whatever `verbose` is (`display=False` hides it).
        callbacks: a list of `keras.callbacks.Callback` (run on the training thread).
        validation_split: fraction of the array samples (the last ones, before
            shuffling) held out for validation, as `model.fit` does.
        validation_data: `(x, y)`, `(x, y, sample_weight)`, a Sequence, a
            PyDataset, a generator (with `validation_steps`) or a `tf.data.Dataset`.
        shuffle: shuffle array samples, or a Sequence's batch order, at every epoch.
        class_weight: dict mapping class index to a weight for the loss.
        sample_weight: per-sample weights, only when `x` is arrays.
        initial_epoch: epoch at which to start (to resume a previous run).
        steps_per_epoch: batches per epoch; None means the Sequence's length
            (read again after every epoch) or the dataset's cardinality;
            required for a generator.
        validation_steps: batches per validation; required for a validation generator.
        validation_batch_size: samples per validation batch for array
            validation data (default `batch_size`).
        validation_freq: validate every N epochs (int), or at these 1-indexed epochs (list).
        workers: 0 reads data on the training thread; N >= 1 uses N workers.
        use_multiprocessing: the workers are processes instead of threads.
        max_queue_size: batches read ahead by the workers.
        display: None shows the dashboard in a notebook (text elsewhere, see
            `verbose`; nothing on a multi-worker job's workers other than the
            chief); True always the dashboard; False nothing.

    Returns:
        The started `nbtrain.Run`.

    Example:

    ```python
    run = nbtrain.fit(model, x_train, y_train, batch_size=64, epochs=10,
                      validation_split=0.1)
    run.pause(); run.resume()
    history = run.wait()
    ```
    """
    if display not in (None, True, False):
        raise ValueError(f"`display` must be None, True or False, got {display!r}.")
    if verbose != "auto":
        check_verbose(verbose)
    run = Run(model, x, y, batch_size=batch_size, epochs=epochs, steps_per_epoch=steps_per_epoch,
              validation_data=validation_data, validation_steps=validation_steps,
              validation_freq=validation_freq, callbacks=callbacks, class_weight=class_weight,
              workers=workers, use_multiprocessing=use_multiprocessing,
              max_queue_size=max_queue_size, shuffle=shuffle, initial_epoch=initial_epoch,
              sample_weight=sample_weight, validation_split=validation_split,
              validation_batch_size=validation_batch_size)
    attach_display(run, display, verbose)
    run.start()
    _STARTED.add(run)
    return run


# Runs started by `fit`: at exit, those still training are named on stderr.
_STARTED: weakref.WeakSet = weakref.WeakSet()


def _warn_unfinished_runs() -> None:
    """At interpreter exit (before the Run's own exit hook stops them: threading
    runs its exit hooks last registered first), say which runs are still training."""
    unfinished = [run for run in list(_STARTED) if run.state in ("running", "paused")]
    for run in unfinished:
        sys.stderr.write(
            f"nbtrain: the program is exiting while a Run is still training ({run!r}): it is "
            "stopped now. Call `run.wait()` before the end of the script to let it finish "
            "(or `run.stop(); run.wait()` to end it yourself).\n")
    if unfinished:
        sys.stderr.flush()


getattr(threading, "_register_atexit", atexit.register)(_warn_unfinished_runs)


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

    config = fit_config(
        model, generator, api="fit_generator", steps_per_epoch=steps_per_epoch, epochs=epochs,
        verbose=verbose, callbacks=callbacks, validation_data=validation_data,
        validation_steps=validation_steps, validation_freq=validation_freq,
        class_weight=class_weight, max_queue_size=max_queue_size, workers=workers,
        use_multiprocessing=use_multiprocessing, shuffle=shuffle, initial_epoch=initial_epoch)
    # Checked first, so no widget is made for input that is refused.
    return FitLoop.from_config(config, progress=progress_for(config.verbose)).run()


__all__ = ["TextStatus", "attach_display", "fit", "fit_generator", "in_notebook"]
