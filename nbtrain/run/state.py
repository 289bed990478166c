"""The states of a `Run` and the changes between them: the one place that names them.

`State` is a `str` enum, so a state compares equal to its name (`run.state ==
"paused"`), formats as it (`f"{run.state}"` is `paused`) and shows as it
(`repr` is `'paused'`): code that treated states as strings keeps working.

```
created --start--> running --pause--> pausing --(loop holds)--> paused
pausing/paused --resume--> running
running/pausing/paused --stop--> stopping --(pass ends)--> stopped
running/pausing/stopping --(pass ends, all epochs done)--> finished
stopped --resume()--> running                  (same epochs, exact next batch)
stopped/finished --resume(epochs=N)--> running (train on to epoch N)
running/pausing/paused/stopping --(exception)--> failed
stopped/finished --(multi-worker job: the other workers are lost)--> failed
failed --resume()--> running      (only when resumable: data, a callback, a lost worker)
```

`TRANSITIONS` is that diagram as data; `check_transition` refuses a change it
does not list, so a change of the semantics is a change of this table.

Nothing here imports anything heavy: the dashboard, the magics and the text
status read these names without loading TensorFlow.
"""

from __future__ import annotations

import enum


class State(str, enum.Enum):
    """A `Run`'s state; equal to (and formatted as) its lower-case name."""

    CREATED = "created"
    RUNNING = "running"
    PAUSING = "pausing"
    PAUSED = "paused"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FINISHED = "finished"
    FAILED = "failed"

    def __str__(self) -> str:
        return self.value

    def __repr__(self) -> str:
        return repr(self.value)

    __format__ = str.__format__


CREATED, RUNNING, PAUSED, STOPPING = State.CREATED, State.RUNNING, State.PAUSED, State.STOPPING
PAUSING = State.PAUSING
STOPPED, FINISHED, FAILED = State.STOPPED, State.FINISHED, State.FAILED

STATES = tuple(state.value for state in State)
"""Every state's name, in the order of the diagram."""

ENDED = frozenset({STOPPED, FINISHED, FAILED})
"""No pass in progress: `run.wait()` returns, the dashboard shows its snapshot."""

ACTIVE = frozenset({RUNNING, PAUSING, STOPPING})
"""Batches are being trained: the clock and the rate meter run."""

HOLDING = frozenset({PAUSING, PAUSED})
"""The loop's gate holds (or will, at the next batch): `resume()` lets it go on."""

_ENDS = frozenset({STOPPED, FINISHED, FAILED})

TRANSITIONS: dict[State, frozenset[State]] = {
    CREATED: frozenset({RUNNING}),
    RUNNING: frozenset({PAUSING, PAUSED, STOPPING}) | _ENDS,  # PAUSED: a follower of a job
    PAUSING: frozenset({PAUSED, RUNNING, STOPPING}) | _ENDS,
    PAUSED: frozenset({RUNNING, STOPPING}) | _ENDS,
    STOPPING: _ENDS,
    STOPPED: frozenset({RUNNING, FAILED}),
    FINISHED: frozenset({RUNNING, FAILED}),
    FAILED: frozenset({RUNNING}),  # only a resumable failure (`Run.resume`, `run.resumable`)
}
"""The changes a Run makes: `TRANSITIONS[old]` is the set of states it may go to."""


def check_transition(old: str, new: str) -> State:
    """`new` as a `State`, if a Run may change from `old` to it.

    Args:
        old: the current state.
        new: the state to change to.

    Returns:
        `State(new)`.

    Raises:
        ValueError: `new` is not a state, or the change is not in `TRANSITIONS`.

    Example:

    ```python
    check_transition("running", "paused")   # State.PAUSED
    ```
    """
    target = State(new)
    if target not in TRANSITIONS[State(old)]:
        raise ValueError(f"A Run cannot change from {old!r} to {new!r}.")
    return target


__all__ = ["ACTIVE", "ENDED", "HOLDING", "STATES", "TRANSITIONS", "State", "check_transition"]
