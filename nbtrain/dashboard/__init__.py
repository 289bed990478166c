"""The live training dashboard for Jupyter: the only place that imports
ipywidgets or matplotlib (and only when a dashboard is made).

The rooms, each named by its role (no file name here is used elsewhere in nbtrain/):

- the callback: `callback` (`Dashboard`, the Keras callback and a thin
  composition of the rest; `display_run` shows a live view of a run);
- the widgets: `layout` (the ipywidgets tree, `DashboardView`), `presenter`
  (what they show, the rate meter), `format` (every string shown, the table);
- the plot: `plot` (matplotlib), `axes` (scales, ticks, legends), `pngfile`
  (its PNG), `liveplot` and `plotworker` (when and on which thread it is
  drawn), `tracker` and
  `series` (the metric series), `throttle` (the update schedule);
- the snapshot: `snapshot` (the final table and plot in the cell's outputs),
  `saver` (the invisible widget that writes it from the page), `htmlview`
  (the whole dashboard as one HTML output, `display="html"`);
- the controls: `buttons` (Pause/Resume, Stop, Continue bound to the
  `Controls` protocol; `RunControls` binds them to a Run, `ControlledRun`
  declares what of it they use), `cell` (a blocking fit's `Controls`),
  `steeringrow` (the learning-rate field), `plotcontrols`;
- the choice of display: `notebook` (frontend detection, `choose_display`,
  the cell's outputs), `display` (what that choice builds), `textstatus`
  (`TextStatus`, a Run in plain text);
- beside them: `failure` (a failed run in one line), `compare`
  (`nbtrain.compare`), `searchboard` (`nbtrain.search`'s view).
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "Dashboard": "nbtrain.dashboard.callback",
    "display_run": "nbtrain.dashboard.callback",
    "in_notebook": "nbtrain.dashboard.notebook",
    "progress_for": "nbtrain.dashboard.display",
}

__all__ = ["Dashboard", "display_run", "in_notebook", "progress_for"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'nbtrain.dashboard' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
