"""Which display a training gets, made in one place.

`notebook.choose_display` decides (the dashboard, plain text or nothing), as
tqdm.auto and TensorBoard's notebook context do; the functions here build
what it chose:

- `attach_display(run, display)`: `nbtrain.fit`'s display of a Run;
- `progress_for(verbose)`: `nbtrain.fit_generator`'s progress callback;
- `register_run_display`: a `Run` shown as a cell's result shows the display
  its `nbtrain.fit` chose.

(`Dashboard.on_train_begin`, for a Dashboard given to a plain `model.fit`,
asks the same chooser.)  Nothing here imports ipywidgets until a dashboard is
made.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

from nbtrain.dashboard import notebook


def attach_display(run: Any, display: Any = None, verbose: Any = "auto") -> Any:
    """Attach a display to a run that has not started.

    Args:
        run: the run.
        display: None: the frontend's default (`notebook.choose_display`: the
            dashboard in JupyterLab, Notebook 7 and VS Code, the HTML output in
            Colab and Kaggle, a text status outside a notebook; `NBTRAIN_DISPLAY`
            overrides it), nothing on a worker of a multi-worker job other than
            the chief; True or `"dashboard"`: the widget dashboard; `"html"`: one
            HTML output updated in place; `"text"`: the text status; False: nothing.
        verbose: the text display (outside a notebook): `"auto"` a line per
            epoch and per change of state; 1 Keras's progress bar and 2 Keras's
            line per epoch (what `model.fit` prints), each with the state lines;
            0 nothing.

    Returns:
        The display object (`Dashboard` or `TextStatus`), or None.

    Raises:
        ValueError: `display` is none of these.

    Example:

    ```python
    attach_display(run, display=False)   # None
    ```
    """
    from nbtrain.engine.config import check_verbose

    text = check_verbose(verbose) if verbose != "auto" else "auto"
    kind = notebook.choose_display(display, chief=getattr(run, "is_chief", True))
    notebook.remember_display(run, kind)  # `run` on a cell's last line shows the same
    if kind is None:
        return None
    if kind == notebook.TEXT:
        from nbtrain.dashboard.textstatus import TextStatus

        if text == 0:
            return None
        if text == "auto":
            return TextStatus.for_run(run)
        from nbtrain.engine.progress import TextProgress

        status = TextStatus.for_run(run, epoch_lines=False)
        run.add_callback(TextProgress(verbose=text))
        return status
    from nbtrain.dashboard.callback import Dashboard

    html = kind == notebook.HTML
    register_run_display()
    mine = [cb for cb in run.callbacks if isinstance(cb, Dashboard)]
    if mine:  # the user passed a Dashboard in `callbacks`: bind and show that one
        mine[0].bind(run)
        mine[0].display(html=html)
        shown = mine[0]
    else:
        shown = Dashboard.for_run(run, html=True) if html else Dashboard.for_run(run)
    if not html and not _busy_cells_take_clicks():
        shown.message(WAIT_HINT)
    return shown


WAIT_HINT = ("This kernel (ipykernel 6) takes the buttons' clicks only while no cell runs: "
             "to stop the run while a cell waits for it (run.wait()), interrupt the kernel (■); "
             "the run stops and keeps its history.")
"""What a run's widget dashboard says in a notebook kernel whose busy cells cannot
take clicks (`nbtrain.kernel_events`: ipykernel 7 can)."""


def _busy_cells_take_clicks() -> bool:
    """False in a notebook kernel whose busy cell cannot handle widget messages
    (ipykernel 6), asked on the kernel's main thread; True elsewhere."""
    if threading.current_thread() is not threading.main_thread() or not notebook.in_notebook():
        return True
    from nbtrain import kernel_events

    return "ipykernel" not in sys.modules or kernel_events.current() is not None


def progress_for(verbose: Any) -> Any:
    """The progress callback `fit_generator` should use for `verbose`: the
    dashboard for `verbose=1` in a notebook (with Pause/Resume and Stop when the
    busy cell can handle widget messages, see `nbtrain.dashboard.cell`), else the engine's
    text progress (None for `verbose=0`).

    Args:
        verbose: 0, 1, 2, `"auto"` (as for `fit_generator`).

    Example:

    ```python
    loop = FitLoop(model, data, epochs=5, verbose=verbose, progress=progress_for(verbose))
    ```
    """
    from nbtrain.engine.progress import make_progress

    if verbose in (1, True, "auto") and notebook.choose_display() in (notebook.DASHBOARD,
                                                                        notebook.HTML):
        from nbtrain.dashboard.callback import Dashboard

        return Dashboard()
    return make_progress(verbose)


def _display_run(run: Any) -> None:
    """A Run shown as a cell's result: the display its `nbtrain.fit` chose
    (`notebook.cell_display`); where that is text, its repr."""
    kind = notebook.cell_display(run)
    if kind == notebook.TEXT:
        notebook.show({"text/plain": repr(run)})
        return
    from nbtrain.dashboard.callback import display_run

    display_run(run, html=kind == notebook.HTML)


def register_run_display(ipython: Any = None) -> None:
    """Make a `Run` shown as a cell's result (`run` on the last line) display a
    live view of it, the display its `nbtrain.fit` chose (`notebook.cell_display`:
    the widget dashboard or the HTML output).  Registered by type name, so nothing
    is imported now; idempotent.

    Args:
        ipython: the shell (default: the current one; nothing happens without one).

    Example:

    ```python
    register_run_display(get_ipython())
    ```
    """
    notebook.display_by_type("nbtrain.run", "Run", _display_run, ipython)


__all__ = ["attach_display", "progress_for", "register_run_display"]
