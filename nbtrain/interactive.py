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
from nbtrain.engine.arguments import FIT, FIT_GENERATOR
from nbtrain.engine.config import check_verbose, fit_config
from nbtrain.engine.recovery import run_blocking
from nbtrain.engine.training import FitLoop
from nbtrain.run import Run


@FIT.takes
def fit(model: Any, x: Any, y: Any = None, *, display: bool | str | None = None,
        compare_with: Any = None, **arguments: Any) -> Run:
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
        verbose: the text display outside a notebook: `"auto"` a line per epoch
            and per change of state, 1 Keras's progress bar, 2 Keras's line per
            epoch (both with the state lines), 0 nothing. In a notebook the
            dashboard shows the run whatever `verbose` is (`display=False` hides it).
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
    verbose = arguments.pop("verbose")  # the display's: the Run has none
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
    run = Run(model, x, y, **arguments)
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


@FIT_GENERATOR.takes
def fit_generator(model: Any, generator: Any, **arguments: Any) -> keras.callbacks.History:
    """Train `model` on batches from a generator or a Sequence (Keras 2's
    `fit_generator`), blocking until done.

    The loop is `nbtrain.engine.fit_generator`; in a notebook `verbose=1`
    shows the live dashboard, elsewhere a text progress bar.  On ipykernel 7
    its Pause/Resume and Stop work although the cell is busy: Pause holds
    between batches, Stop ends training after the current batch and this call
    returns the History.

    Args:
        verbose: 0 silent, 1 progress (dashboard in a notebook), 2 a line per epoch.
        shuffle: shuffle a Sequence's batch order every epoch.

    Returns:
        A `keras.callbacks.History`.

    Example:

    ```python
    history = nbtrain.fit_generator(model, sequence, epochs=5, workers=2)
    ```
    """
    config = fit_config(model, generator, api="fit_generator", **arguments)
    # Checked first, so no widget is made for input that is refused.
    loop = FitLoop.from_config(config, progress=lambda: progress_for(config.verbose))
    return run_blocking(loop)  # a failure raises with its one line as a note


__all__ = ["TextStatus", "attach_display", "fit", "fit_generator", "in_notebook"]
