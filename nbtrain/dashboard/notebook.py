"""Where the dashboard shows itself: notebook detection and the cell's outputs.

A displayed dashboard is three outputs of its cell, each with a display id:

1. the live widget (core ipywidgets only: the custom `SnapshotSaver` is a
   widget model the page creates but no output displays, so a frontend that
   cannot load it still draws the whole dashboard), as
   `application/vnd.jupyter.widget-view+json` with a `text/plain` fallback
   that is the same on every run (`format.TEXT_FALLBACK`);
2. the metric table snapshot (`text/html` + `text/plain`), empty while training;
3. the plot snapshot (`image/png` + `text/plain`), empty while training.

When a run ends, 2 and 3 are updated (`update_display_data`, which front-ends
route by display id from any thread) with the final table and plot, so the
saved notebook keeps them as ordinary outputs: a notebook reopened without a
kernel, or rendered where widgets do not run (GitHub, nbviewer, nbconvert),
shows the final state.  The widget itself is left in its own output: that is
the only output a front-end without the widget's model cannot draw.  Where it
can, the live view shows everything itself and its style hides 2 and 3
(`format.snapshot_css`).  A page reloaded before the end never receives the
updates (Jupyter routes them to the page that ran the cell), only the widgets:
there the view's `SnapshotSaver` writes the snapshot into 2 and 3, which carry
the dashboard's key in their metadata (`snapshot_metadata`) for it to find.

It also holds `frontend` (Colab, Kaggle, VS Code, Jupyter or a console, from
what the kernel can see) and `choose_display`, the one choice between the
widget dashboard, the HTML output, text and nothing; `cell_display`, the
display of a run or search shown as a cell's result, follows the same choice.  Nothing here imports
ipywidgets or matplotlib, nor any other module of the dashboard but `format`.
"""

from __future__ import annotations

import base64
import os
import sys
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nbtrain.dashboard.format import TEXT_FALLBACK

WIDGET_MIMETYPE = "application/vnd.jupyter.widget-view+json"


def in_notebook() -> bool:
    """True when running in a Jupyter kernel whose front-end can show widgets
    (JupyterLab, Notebook 7, VS Code, Colab); False in a terminal, a script,
    CI, or IPython without a kernel.

    Example:

    ```python
    callback = nbtrain.Dashboard() if in_notebook() else TextProgress()
    ```
    """
    if "IPython" not in sys.modules:
        return False
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None or getattr(shell, "kernel", None) is None:
        return False
    return not type(shell).__module__.startswith("spyder")  # Spyder's console has no widgets


DASHBOARD = "dashboard"
TEXT = "text"
HTML = "html"
DISPLAYS = (DASHBOARD, HTML, TEXT)
"""The displays `choose_display` may return (or None: nothing)."""

ENV_DISPLAY = "NBTRAIN_DISPLAY"
"""The environment variable that overrides the frontend's default display:
`dashboard`, `html`, `text` or `none`."""

COLAB, KAGGLE, VSCODE, JUPYTER, CONSOLE = "colab", "kaggle", "vscode", "jupyter", "console"

FRONTEND_DISPLAYS = {
    JUPYTER: DASHBOARD,  # JupyterLab 4, Notebook 7: tested here (browser tests)
    VSCODE: DASHBOARD,   # core ipywidgets render; the snapshot outputs keep the end
    COLAB: HTML,         # widgets updated from a thread may not refresh (colabtools#3373)
    KAGGLE: HTML,        # widget outputs stuck on "Loading widget..." (docker-python#1443)
    CONSOLE: TEXT,       # a terminal, a script, IPython without a kernel
}
"""The default display of each frontend (the README's frontend table says why)."""


def frontend() -> str:
    """Which frontend the kernel runs under, from what the kernel can see.

    - `"colab"`: `google.colab` imported, or `COLAB_RELEASE_TAG` / `COLAB_GPU` set;
    - `"kaggle"`: `KAGGLE_KERNEL_RUN_TYPE` (or `KAGGLE_URL_BASE`) set;
    - `"vscode"`: `VSCODE_PID` / `VSCODE_CWD` set, or VS Code's
      `__vsc_ipynb_file__` in the user's namespace;
    - `"jupyter"`: any other notebook kernel (JupyterLab, Notebook 7, nbconvert, ...;
      `JPY_*` variables are set by Jupyter Server);
    - `"console"`: no notebook kernel (`in_notebook()` is False).

    Example:

    ```python
    frontend()   # "colab" in Google Colab, "console" in a terminal
    ```
    """
    if not in_notebook():
        return CONSOLE
    env = os.environ
    if "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in env or "COLAB_GPU" in env:
        return COLAB
    if "KAGGLE_KERNEL_RUN_TYPE" in env or "KAGGLE_URL_BASE" in env:
        return KAGGLE
    if "VSCODE_PID" in env or "VSCODE_CWD" in env or "__vsc_ipynb_file__" in _user_ns():
        return VSCODE
    return JUPYTER


def _user_ns() -> dict:
    from IPython import get_ipython

    return getattr(get_ipython(), "user_ns", None) or {}


def check_display(display: Any) -> None:
    """Raise ValueError unless `display` is None, True, False, or one of `DISPLAYS`."""
    if display is None or display is True or display is False or display in DISPLAYS:
        return
    raise ValueError(f"`display` must be None, True, False, {', '.join(map(repr, DISPLAYS))}; "
                     f"got {display!r}.")


def _from_env() -> str | bool | None:
    value = os.environ.get(ENV_DISPLAY, "").strip().lower()
    if not value:
        return None
    if value in ("none", "0", "false", "off"):
        return False
    if value not in DISPLAYS:
        raise ValueError(f"{ENV_DISPLAY}={value!r}: expected one of "
                         f"{', '.join(DISPLAYS)} or none.")
    return value


def choose_display(display: bool | str | None = None, *, chief: bool = True) -> str | None:
    """The one choice of how a training is shown: `DASHBOARD`, `HTML`, `TEXT` or None.

    Every display of nbtrain asks it (`nbtrain.fit`, `fit_generator`'s
    `verbose=1`, a `Dashboard` given to a plain `model.fit`); the builders are in
    `nbtrain.dashboard.display`.

    Args:
        display: None: the default of the frontend (`FRONTEND_DISPLAYS` by
            `frontend()`: the widget dashboard in JupyterLab, Notebook 7 and VS
            Code, the HTML output in Colab and Kaggle, text outside a notebook),
            unless `NBTRAIN_DISPLAY` says otherwise; nothing when not `chief`.
            True or `"dashboard"`: the widget dashboard; `"html"`: one HTML output
            updated in place (no widgets); `"text"`: text; False: nothing.
        chief: False on a worker of a multi-worker job other than the chief
            (the chief shows the job; the others run headless).

    Returns:
        `DASHBOARD`, `HTML`, `TEXT` or None.

    Raises:
        ValueError: `display` (or `NBTRAIN_DISPLAY`) is none of these.

    Example:

    ```python
    choose_display()          # "text" in a terminal, "dashboard" in JupyterLab, "html" in Colab
    choose_display("html")    # "html"
    choose_display(False)     # None
    ```
    """
    check_display(display)
    if display is None:
        if not chief:
            return None
        display = _from_env()
        if display is None:
            return FRONTEND_DISPLAYS[frontend()]
    if display is False:
        return None
    return DASHBOARD if display is True else display


_GIVEN: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
"""The display each run or search was given (`remember_display`), while it lives."""


def remember_display(obj: Any, kind: str | None) -> None:
    """Record the display `obj` (a Run, a search) was given by `choose_display`, for
    `cell_display` (nothing for an object that cannot be weakly referenced)."""
    try:
        _GIVEN[obj] = kind
    except TypeError:
        pass


def cell_display(obj: Any) -> str:
    """The display of `obj` shown as a cell's result (`run` or `search` on a cell's
    last line): the one its training was given (`remember_display`: `nbtrain.fit`'s
    `display=`, else the frontend's default or `NBTRAIN_DISPLAY`), or, for one given
    none (`display=False`, a worker's run) or never shown, the frontend's default
    (`choose_display()`); `TEXT` where that is nothing too.

    Example:

    ```python
    run = nbtrain.fit(model, x, y, display="html")
    cell_display(run)   # "html": `run` on a cell's last line shows the HTML output
    ```
    """
    try:
        kind = _GIVEN.get(obj)
    except TypeError:  # not weakly referable, or not hashable: never recorded
        kind = None
    if kind is None:
        kind = choose_display()
    return kind or TEXT


def widget_bundle(model_id: str) -> dict:
    """The mime bundle that shows a widget, with a stable plain-text fallback."""
    return {
        WIDGET_MIMETYPE: {"version_major": 2, "version_minor": 0, "model_id": model_id},
        "text/plain": TEXT_FALLBACK,
    }


def png_bundle(png: bytes, text: str) -> dict:
    """The mime bundle of a PNG image (base64, as nbformat stores it)."""
    return {"image/png": base64.b64encode(png).decode("ascii"), "text/plain": text}


def _shell_ready() -> bool:
    if "IPython" not in sys.modules:
        return False
    from IPython.core.interactiveshell import InteractiveShell

    return InteractiveShell.initialized()


def show(bundle: dict, metadata: dict | None = None) -> str | None:
    """Display a raw mime bundle (with the output's `metadata`) as a new output of
    the current cell; return its display id (None where there is nothing to
    display into)."""
    if not _shell_ready():
        return None
    from IPython.display import display

    handle = display(bundle, raw=True, display_id=True, metadata=metadata)
    return getattr(handle, "display_id", None)


def update(display_id: str | None, bundle: dict, metadata: dict | None = None) -> None:
    """Replace the output `display_id` with `bundle` and `metadata` (safe from any thread)."""
    if display_id is None or not _shell_ready():
        return
    from IPython.display import update_display

    update_display(bundle, display_id=display_id, raw=True, metadata=metadata)


def snapshot_metadata(kind: str, key: str | None) -> dict | None:
    """The metadata that marks an output as the `kind` ("table" or "plot")
    snapshot of the dashboard `key` (None: no key, no mark).

    The page's half of `SnapshotSaver` finds the outputs it may set by it; the
    output keeps it in the saved notebook, as any output's metadata.

    Example:

    ```python
    snapshot_metadata("plot", "3f2a")  # {"nbtrain": {"snapshot": "plot", "key": "3f2a"}}
    ```
    """
    if key is None:
        return None
    return {"nbtrain": {"snapshot": kind, "key": key}}


@dataclass
class Outputs:
    """The display ids of one displayed dashboard: widget, table snapshot, plot
    snapshot, and the dashboard's `key` their metadata carries."""

    view: str | None
    table: str | None
    plot: str | None
    key: str | None = None


def show_dashboard(model_id: str, table: dict | None = None, plot: dict | None = None,
                   key: str | None = None) -> Outputs:
    """Display a dashboard's three outputs in the current cell (main thread); the
    snapshot outputs are marked as the dashboard `key`'s (`snapshot_metadata`)."""
    return Outputs(show(widget_bundle(model_id)),
                   show(table or {}, snapshot_metadata("table", key)),
                   show(plot or {}, snapshot_metadata("plot", key)), key)


def update_snapshot(outputs: Outputs, table: dict | None, plot: dict | None) -> None:
    """Set (or, with None, empty) the snapshot outputs of a displayed dashboard
    (none for a dashboard shown as one HTML output: `htmlview`)."""
    if outputs.table is not None:
        update(outputs.table, table or {}, snapshot_metadata("table", outputs.key))
    if outputs.plot is not None:
        update(outputs.plot, plot or {}, snapshot_metadata("plot", outputs.key))


def after_cell(callback: Callable[[Any], None]) -> Callable[[], None]:
    """Call `callback(result)` once, when the running cell finishes (IPython's
    `post_run_cell`, with the `ExecutionResult`); return a function that cancels it."""
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None:
        return lambda: None

    def once(result: Any) -> None:
        cancel()
        callback(result)

    def cancel() -> None:
        try:
            shell.events.unregister("post_run_cell", once)
        except ValueError:
            pass

    shell.events.register("post_run_cell", once)
    return cancel


def display_by_type(module: str, name: str, show: Callable[[Any], Any],
                    ipython: Any = None) -> None:
    """Have IPython show an object of type `module.name` (a cell's last line) by calling
    `show(obj)`: registered by type name, so nothing is imported; idempotent; nothing
    happens without a shell (`ipython` defaults to the current one)."""
    if ipython is None:
        if "IPython" not in sys.modules:
            return
        from IPython import get_ipython

        ipython = get_ipython()
    formatter = getattr(getattr(ipython, "display_formatter", None),
                        "ipython_display_formatter", None)
    if formatter is not None:
        formatter.for_type_by_name(module, name, show)
