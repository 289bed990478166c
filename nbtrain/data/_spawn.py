"""Start worker processes with the 'spawn' method, without re-running `__main__`.

A spawned child normally imports the parent's main module again (as
`__mp_main__`) before it unpickles its target.  nbtrain ships everything a
worker needs by value (cloudpickle), so that import buys nothing and costs a
lot: a script's top-level code (often `import tensorflow`) would run again in
every worker, and a script without an `if __name__ == "__main__":` guard would
fail.  `SpawnProcess` below is the stdlib spawn process whose launcher leaves
the main module out of the preparation data; everything else (sys.path, cwd,
the resource tracker, the pickled process object) is exactly the stdlib's.

'fork' is never used: forking a parent that has TensorFlow's threads running
can deadlock the child.
"""

from __future__ import annotations

import multiprocessing
import types
from typing import Any

_CTX = multiprocessing.get_context("spawn")
_MAIN_KEYS = ("init_main_from_name", "init_main_from_path")


def _without_main(get_preparation_data):
    def get_data(name: str) -> dict:
        data = get_preparation_data(name)
        for key in _MAIN_KEYS:
            data.pop(key, None)
        return data

    return get_data


def _make_popen() -> type | None:
    """The stdlib POSIX spawn Popen, its `_launch` bound to a `spawn` module
    whose `get_preparation_data` drops the main module (None if unavailable)."""
    try:
        from multiprocessing import popen_spawn_posix, spawn

        launch = popen_spawn_posix.Popen._launch
        spawn_view = types.SimpleNamespace(**vars(spawn))
        spawn_view.get_preparation_data = _without_main(spawn.get_preparation_data)
        launch_globals = dict(launch.__globals__, spawn=spawn_view)
        patched = types.FunctionType(
            launch.__code__, launch_globals, launch.__name__, launch.__defaults__, launch.__closure__
        )
    except (ImportError, AttributeError):  # Windows, or a stdlib that changed shape
        return None
    return type("NoMainPopen", (popen_spawn_posix.Popen,), {"_launch": patched})


_POPEN = _make_popen()


class SpawnProcess(_CTX.Process):
    """A 'spawn' process that does not import the parent's `__main__` module."""

    @staticmethod
    def _Popen(process_obj: Any):  # noqa: N802 - the stdlib's name
        if _POPEN is None:
            return _CTX.Process._Popen(process_obj)
        return _POPEN(process_obj)


def pipe() -> tuple[Any, Any]:
    """A one-way pipe `(reader, writer)` from the spawn context."""
    return _CTX.Pipe(duplex=False)
