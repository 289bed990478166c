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

`CONTROLS` is the user's side of it: each action (`pause`, `resume`, `stop`,
`continue`, which is `resume(epochs=N)`) with the states it acts in and the
state it leads to, in two columns: during a pass (the loop's gate acts on the
change) and between passes (a new pass begins).  `allowed_actions` reads it,
`Run`'s controls act by it, and so do the blocking fit's
(`nbtrain.dashboard.cell`, which has one pass and so the first column only);
every change it lists is checked against `TRANSITIONS` when this module loads.

Nothing here imports anything heavy: the dashboard, the magics and the text
status read these names without loading TensorFlow.
"""

from __future__ import annotations

import enum
from typing import NamedTuple


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

TRANSITIONS: dict[State, frozenset[State]] = {
    CREATED: frozenset({RUNNING}),
    RUNNING: frozenset({PAUSING, PAUSED, STOPPING}) | ENDED,  # PAUSED: a follower of a job
    PAUSING: frozenset({PAUSED, RUNNING, STOPPING}) | ENDED,
    PAUSED: frozenset({RUNNING, STOPPING}) | ENDED,
    STOPPING: ENDED,
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


class Control(NamedTuple):
    """One action of the controls: the state it leads to, and the states it acts in.

    Attributes:
        target: the state the action changes to.
        in_pass: states of a pass in progress where it acts: the state changes and
            the loop's gate acts on it before the next batch.
        new_pass: states between passes where it acts: a new pass begins.
    """

    target: State
    in_pass: frozenset[State] = frozenset()
    new_pass: frozenset[State] = frozenset()

    def acts_in(self, state: str, new_pass: bool = True) -> bool:
        """True if the action acts in `state` (`new_pass=False`: during a pass only)."""
        return state in self.in_pass or (new_pass and state in self.new_pass)


CONTROLS: dict[str, Control] = {
    "pause": Control(PAUSING, in_pass=frozenset({RUNNING})),
    "stop": Control(STOPPING, in_pass=frozenset({RUNNING, PAUSING, PAUSED})),
    # FAILED: only a failure `resume()` goes on from (`Run.resumable`)
    "resume": Control(RUNNING, in_pass=HOLDING, new_pass=frozenset({STOPPED, FAILED})),
    "continue": Control(RUNNING, new_pass=frozenset({STOPPED, FINISHED})),  # resume(epochs=N)
}
"""The controls: `CONTROLS[action]` says where the action acts and what it changes to.

`resume(epochs=N)` while running is no action: it only moves the final epoch.
"""


def allowed_actions(state: str, resumable: bool = False, new_pass: bool = True) -> frozenset[str]:
    """The actions of `CONTROLS` that act in `state`.

    Args:
        state: the current state.
        resumable: a failure `resume()` goes on from (else a failed run allows nothing).
        new_pass: a new pass can begin (False: a training of one pass, whose
            controls act during it only).

    Returns:
        A subset of `{'pause', 'resume', 'stop', 'continue'}`.

    Example:

    ```python
    allowed_actions("paused")                   # {'resume', 'stop'}
    allowed_actions("stopped", new_pass=False)  # frozenset(): nothing goes on
    ```
    """
    if state == FAILED and not resumable:
        return frozenset()
    return frozenset(action for action, control in CONTROLS.items()
                     if control.acts_in(state, new_pass))


def _check_controls() -> None:
    """Every change `CONTROLS` makes is one `TRANSITIONS` lists."""
    for control in CONTROLS.values():
        for source in control.in_pass | control.new_pass:
            check_transition(source, control.target)


_check_controls()


__all__ = ["ACTIVE", "CONTROLS", "ENDED", "HOLDING", "STATES", "TRANSITIONS", "Control", "State",
           "allowed_actions", "check_transition"]
