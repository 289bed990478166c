"""`nbtrain.fit`: build a `Run`, attach a display, start it, return at once.

This module sits above both `nbtrain.run` (which knows nothing of widgets) and
`nbtrain.dashboard` (which knows nothing of how training runs): it is the one
place that puts them together, so neither has to import the other.  Which
display a training gets is chosen in one place,
`nbtrain.dashboard.notebook.choose_display`, and built by
`nbtrain.dashboard.display` (`attach_display`, `progress_for`); `TextStatus`
lives in `nbtrain.dashboard.textstatus`.  All three are importable from here.
"""

from __future__ import annotations

import atexit
import sys
import threading
import weakref
from typing import Any

import keras

from nbtrain.dashboard.display import attach_display, progress_for
from nbtrain.dashboard.notebook import check_display, in_notebook
from nbtrain.dashboard.textstatus import TextStatus
from nbtrain.engine.config import check_verbose, fit_config
from nbtrain.engine.recovery import run_blocking
from nbtrain.engine.training import FitLoop
from nbtrain.run import Run


def fit(model: Any, x: Any, y: Any = None, *, batch_size: int | None = None, epochs: int = 1,
        verbose: Any = "auto", callbacks: Any = None, validation_split: float = 0.0,
        validation_data: Any = None, shuffle: bool = True, class_weight: dict | None = None,
        sample_weight: Any = None, initial_epoch: int = 0, steps_per_epoch: int | None = None,
        validation_steps: int | None = None, validation_batch_size: int | None = None,
        validation_freq: Any = 1, workers: int = 1, use_multiprocessing: bool = False,
        max_queue_size: int = 10, display: bool | str | None = None,
        compare_with: Any = None) -> Run:
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
        display: None: the frontend's default, the widget dashboard in
            JupyterLab, Notebook 7 and VS Code, the HTML output in Colab and
            Kaggle, text outside a notebook (see `verbose`), overridden by the
            environment variable `NBTRAIN_DISPLAY`; nothing on a multi-worker
            job's workers other than the chief.  True or `"dashboard"`: the
            widget dashboard; `"html"`: one HTML output updated in place (no
            widgets: steer with `run.pause()` ... or `%nbtrain`); `"text"`:
            text; False: nothing.
        compare_with: an earlier `nbtrain.Run` or `keras.callbacks.History`
            whose epoch curves the dashboard's plot draws faintly behind this
            run's (see `nbtrain.compare` for a figure of several runs).

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
    check_display(display)
    if verbose != "auto":
        check_verbose(verbose)
    if compare_with is not None:
        from nbtrain.dashboard.compare import history_of

        try:
            history_of(compare_with)  # a clear TypeError before anything starts
        except TypeError:
            raise TypeError(
                "`compare_with` must be an earlier nbtrain.Run or a keras.callbacks.History, "
                f"got {type(compare_with).__name__} ({compare_with!r:.60})."
            ) from None
    run = Run(model, x, y, batch_size=batch_size, epochs=epochs, steps_per_epoch=steps_per_epoch,
              validation_data=validation_data, validation_steps=validation_steps,
              validation_freq=validation_freq, callbacks=callbacks, class_weight=class_weight,
              workers=workers, use_multiprocessing=use_multiprocessing,
              max_queue_size=max_queue_size, shuffle=shuffle, initial_epoch=initial_epoch,
              sample_weight=sample_weight, validation_split=validation_split,
              validation_batch_size=validation_batch_size)
    shown = attach_display(run, display, verbose)
    if compare_with is not None:
        from nbtrain.dashboard.compare import overlay

        overlay(shown, compare_with)
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
    shows the live dashboard, elsewhere a text progress bar.  On ipykernel 7
    its Pause/Resume and Stop work although the cell is busy: Pause holds
    between batches, Stop ends training after the current batch and this call
    returns the History.

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
    config = fit_config(
        model, generator, api="fit_generator", steps_per_epoch=steps_per_epoch, epochs=epochs,
        verbose=verbose, callbacks=callbacks, validation_data=validation_data,
        validation_steps=validation_steps, validation_freq=validation_freq,
        class_weight=class_weight, max_queue_size=max_queue_size, workers=workers,
        use_multiprocessing=use_multiprocessing, shuffle=shuffle, initial_epoch=initial_epoch)
    # Checked first, so no widget is made for input that is refused.
    loop = FitLoop.from_config(config, progress=lambda: progress_for(config.verbose))
    return run_blocking(loop)  # a failure raises with its one line as a note


__all__ = ["TextStatus", "attach_display", "fit", "fit_generator", "in_notebook"]
