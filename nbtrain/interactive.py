"""`nbtrain.fit`: build a `Run`, attach a display, start it, return at once.

This module sits above both `nbtrain.run` (which knows nothing of widgets) and
`nbtrain.dashboard` (which knows nothing of how training runs): it is the one
place that puts them together, so neither has to import the other.  Which
display a training gets is chosen in one place,
`nbtrain.dashboard.notebook.choose_display`, and built by
`nbtrain.dashboard.display` (`attach_display`, `progress_for`); `TextStatus`
lives in `nbtrain.dashboard.text`.  All three are importable from here.
"""

from __future__ import annotations

from typing import Any

import keras

from nbtrain.dashboard.display import attach_display, progress_for
from nbtrain.dashboard.notebook import in_notebook
from nbtrain.dashboard.text import TextStatus
from nbtrain.engine.training import FitLoop
from nbtrain.run import Run


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
