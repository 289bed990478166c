"""`Run`: the fit_generator loop in a background thread, steered from any thread.

The states (`STATES`, `ENDED`) are importable without loading TensorFlow;
`Run` and `RunHistory` load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from nbtrain.run.state import ENDED, STATES, State

_LAZY = {"Run": "nbtrain.run.run", "RunHistory": "nbtrain.run.run"}

__all__ = ["ENDED", "STATES", "Run", "RunHistory", "State"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'nbtrain.run' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
