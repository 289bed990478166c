"""What a Run's control says when it cannot act in the run's state.

One rule for `run.pause()`, `run.resume()` and `run.stop()`: a call the run's
state makes a no-op does nothing, warns (`RuntimeWarning`, pointing at the
caller's line) with the state and what would act, and returns False.  A call
that can never act on this run raises `RuntimeError` instead: the run has not
started, it was closed, it failed and cannot be resumed, or it follows the
chief of a multi-worker job.
"""

from __future__ import annotations

import warnings

from nbtrain.data.userwarning import user_stacklevel
from nbtrain.run.state import (
    FAILED,
    FINISHED,
    PAUSED,
    PAUSING,
    RUNNING,
    STOPPED,
    STOPPING,
    State,
)

_WHY: dict[tuple[str, State], str] = {
    ("pause", PAUSING): "is already pausing (it holds before its next batch)",
    ("pause", PAUSED): "is already paused; run.resume() goes on",
    ("pause", STOPPED): "is stopped; run.resume() continues it",
    ("stop", STOPPING): "is already stopping (run.wait() returns once it has stopped)",
    ("stop", STOPPED): "is already stopped",
    ("resume", RUNNING): "is already running (run.resume(epochs=N) changes its final epoch)",
    ("resume", STOPPING): "is still stopping: call run.wait(), then run.resume()",
}
_STATE = {FINISHED: "has finished", FAILED: "failed (see run.exception)"}


def refused(action: str, state: State) -> bool:
    """Warn that `run.<action>()` did nothing in `state`; return False (its result).

    Args:
        action: `'pause'`, `'resume'` or `'stop'`.
        state: the run's state when it was called.

    Returns:
        False.

    Example:

    ```python
    if status.state not in (RUNNING,):
        return refused("pause", status.state)
    ```
    """
    why = _WHY.get((action, state)) or _STATE.get(state) or f"is {state}"
    warnings.warn(f"run.{action}() did nothing: the run {why}.", RuntimeWarning,
                  stacklevel=user_stacklevel())
    return False


__all__ = ["refused"]
