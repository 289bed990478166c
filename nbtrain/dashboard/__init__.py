"""The live training dashboard for Jupyter: the only place that imports
ipywidgets or matplotlib (and only when a dashboard is made).

`Dashboard` is a Keras callback (also bound to a `Run` for its controls),
`display_run` shows a live view of a run, `in_notebook` and `progress_for`
pick between the dashboard and the engine's text progress.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "Dashboard": "nbtrain.dashboard.widget",
    "display_run": "nbtrain.dashboard.widget",
    "in_notebook": "nbtrain.dashboard.notebook",
    "progress_for": "nbtrain.dashboard.notebook",
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
