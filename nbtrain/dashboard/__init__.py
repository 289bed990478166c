"""The live training dashboard for Jupyter: the only place that imports
ipywidgets or matplotlib (and only when a dashboard is made).

The rooms:

- `widget`: `Dashboard`, a thin composition and the Keras callback;
  `display_run` shows a live view of a run;
- `presenter`: the widgets' values (`Presenter`) and the rate meter;
- `snapshot`: the final table and plot written into the cell's outputs;
- `controls`: the buttons bound to a Run (`ControlledRun` declares what of
  it they use);
- `notebook`: notebook detection, the cell's outputs, and `choose_display`,
  the one choice between the dashboard, text and nothing;
- `display`: what that choice builds (`attach_display`, `progress_for`,
  `register_run_display`);
- `text`: `TextStatus`, the plain-text display of a Run;
- pure parts: `format` (every string shown), `tracker` and `series` (the
  metric series), `throttle` (the update schedule), `plot` (matplotlib),
  `view` (the ipywidgets tree).
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "Dashboard": "nbtrain.dashboard.widget",
    "display_run": "nbtrain.dashboard.widget",
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
