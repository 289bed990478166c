"""`Run`: the fit_generator loop in a background thread, steered from any thread.

A `Run` owns one `FitLoop` (validated inputs, data streams, callbacks and the
position `(epoch, batch)`) and calls `FitLoop.run()` once per *pass*, each
pass on its own thread.  Controls only change the run's state under a lock;
the loop acts on it at its *gate*, which it calls before every training step.
The Run never imports the dashboard; `nbtrain.interactive.fit` builds a Run,
attaches a display and starts it.

The rooms of this package (each a small module; change one without reading
the others):

- `state`: the states (`State`, a `str` enum), `ENDED`, `ACTIVE`, the
  transitions as a table (`TRANSITIONS`) that every change is checked
  against, and the controls as a table (`CONTROLS`: where each action acts
  and what it changes to; `allowed_actions`);
- `events`: `RunStatus`, the state under the Run's lock, its failure, and the
  listeners told of each change (delivered in order, outside the lock);
- `actions`: `RunActions`, start, pause, resume, stop and close, by `CONTROLS`;
- `passes`: `PassRunner`, the pass threads (claim the model, run the loop,
  end in `finished`, `stopped` or `failed`);
- `hold`: `Hold`, the local gate (pause, stop) and `with run.paused():`;
- `steering`: `RunSteering`, hyperparameters changed while it trains;
- `registry`: which model trains in which Run; stops every Run at exit;
- `waiting`: `Deadline`, `wait_until`, `join`: the one way the caller's
  thread blocks (in short slices, so Ctrl-C is seen);
- `coordinator`: the `Coordinator` protocol, `LocalCoordinator` (the default)
  and `make_coordinator`;
- `multiworker`: `WorkerCoordinator`, the coordinator of a Run on a worker of
  a `MultiWorkerMirroredStrategy` job (the chief steers, the others follow);
- `history`: `RunHistory`, one History across every pass;
- `run`: `Run`, the public facade, built from those parts: it answers what
  may be read (state, position, history) and `wait()`, and takes its other
  public methods from the part that implements them.

The states (`STATES`, `ENDED`, `State`) import without TensorFlow; `Run`
and `RunHistory` load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from nbtrain.run.state import ENDED, STATES, State

_LAZY = {"Run": "nbtrain.run.run", "RunHistory": "nbtrain.run.history"}

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
