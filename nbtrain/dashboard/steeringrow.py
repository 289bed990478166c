"""`SteeringControls`: the dashboard's learning-rate field, bound to a Run.

It shows the optimizer's learning rate now, and a field with an Apply button
that calls `run.set_learning_rate`.  The value is pending until the loop
applies it, before the next batch: while running that is at once, while
paused at Resume, while stopped or finished (or not started) when training
goes on.  A note at the end of the row says which: "pending: from the next
batch", then where it landed ("applied from epoch 3, batch 12"), or what was
wrong with the entry (a text that is not a number, a refused value); the
next success clears an error.  Every change (from the field, from code, from
`%nbtrain lr`) updates the shown value and marks its position on the plot.

The row is shown while the run can still train and has not failed (not for
a failed run, even one that resumes once its cause is fixed, nor a closed
one); the note is at its end, so the field and Apply do not move when it
changes.

Clicks arrive on the main thread; changes arrive on the training thread
through the Run's steering listener, and only set widget values.
"""

from __future__ import annotations

import html
import math
from typing import Any, Callable

import ipywidgets as widgets

from nbtrain.dashboard.layout import set_traits
from nbtrain.run.state import CREATED, ENDED, FAILED, PAUSED, PAUSING, RUNNING, STOPPING
from nbtrain.text import format_learning_rate

PENDING = "pending: from the next batch"
"""The note while an applied value waits for the loop (running or paused)."""
_GOES_ON = {CREATED: ", when training starts"}
GOES_ON = ", when training goes on"
"""Added to `PENDING` while the run is stopped or finished (Resume or Continue applies it)."""
_TRAINING = (RUNNING, PAUSING, PAUSED, STOPPING)


def _classed(cls: type, *classes: str, **traits: Any) -> widgets.DOMWidget:
    return cls(_dom_classes=classes, **traits)


def lr_text(lr: float | None) -> str:
    """A learning rate as a person writes it (`0.001`, not float32's `0.00100000004`)."""
    return "—" if lr is None else format_learning_rate(lr)


def parse_rate(text: str) -> float:
    """The number in the field's `text`.

    Raises:
        ValueError: the text is not a number (a message for the user).
    """
    try:
        value = float(text.strip())
    except ValueError:
        raise ValueError(f"“{text.strip()}” is not a number: write it as 0.001 or 3e-4") from None
    if not math.isfinite(value):
        raise ValueError(f"the learning rate must be a finite number, not {text.strip()}")
    return value


class SteeringControls:
    """The learning-rate display and field of one dashboard.

    Args:
        dashboard: the `Dashboard` (its `presenter`).
        run: the `nbtrain.Run` it steers.

    Attributes:
        box: the widgets (CSS class `nbtrain-steering`), a row below the controls.
        current: the learning rate shown (`nbtrain-lr-current`).
        value: the field, a text (`nbtrain-lr-value`).
        apply: the button (`nbtrain-lr-apply`).
        note: what became of the last entry (`nbtrain-lr-note`, with
            `nbtrain-lr-pending`, `nbtrain-lr-applied` or `nbtrain-lr-error`).
        pending: the value applied from the field that the loop has not taken yet.

    Example:

    ```python
    steering = SteeringControls.attach(dashboard, run)   # what Dashboard.bind does
    ```
    """

    def __init__(self, dashboard: Any, run: Any):
        self.dashboard = dashboard
        self.presenter = dashboard.presenter
        self.run = run
        self.pending: float | None = None
        self._state = CREATED
        self._applied = ""  # the last "applied from ..." note (an error hides it until fixed)
        lr = run.learning_rate
        fixed = {"flex": "0 0 auto"}  # a long note never squeezes the field or Apply
        self.current = _classed(widgets.HTML, "nbtrain-lr-current", value=_current_html(lr),
                                layout=widgets.Layout(width="165px", margin="0 4px 0 4px",
                                                      **fixed))
        self.value = _classed(widgets.Text, "nbtrain-lr-value", value=lr_text(lr),
                              description="set to", continuous_update=True,
                              placeholder="e.g. 3e-4",
                              layout=widgets.Layout(width="170px", **fixed),
                              style={"description_width": "initial"})
        self.apply = _classed(widgets.Button, "nbtrain-lr-apply", description="Apply",
                              icon="check",
                              tooltip="Set the learning rate from the next batch",
                              layout=widgets.Layout(width="90px", **fixed))
        self.note = _classed(widgets.HTML, "nbtrain-lr-note", value="",
                             layout=widgets.Layout(margin="0 0 0 8px", flex="1 1 auto"))
        self.box = _classed(widgets.HBox, "nbtrain-steering",
                            children=[self.current, self.value, self.apply, self.note])
        self.apply.on_click(self._on_apply_click)
        self.value.observe(self._on_edit, names="value")
        self._removers: list[Callable[[], None]] = []

    @classmethod
    def attach(cls, dashboard: Any, run: Any) -> SteeringControls | None:
        """Make the controls for `run` and put them in a row below the dashboard's
        controls; None when the run cannot be steered (no `set_learning_rate`, or
        a learning rate that is a schedule)."""
        if not hasattr(run, "set_learning_rate") or run.learning_rate is None:
            return None
        steering = cls(dashboard, run)
        root = dashboard.presenter.view.root
        rows = list(root.children)
        at = rows.index(dashboard.presenter.view.controls) + 1 if (
            dashboard.presenter.view.controls in rows) else len(rows)
        root.children = (*rows[:at], steering.box, *rows[at:])
        steering.follow()
        return steering

    def follow(self) -> None:
        """Follow the run's state and its hyperparameter changes."""
        run = self.run
        self._removers = [run.add_listener(self.on_run_state),
                          run.add_steering_listener(self.on_steered)]
        self.on_run_state(run, None, run.state)

    def detach(self) -> None:
        """Stop following the run."""
        for remove in self._removers:
            remove()
        self._removers = []

    def on_run_state(self, run: Any, old: str | None, new: str) -> None:
        """Listener: the row shows while the run can train again (every state but an
        ended run that allows nothing) and has not failed (a failed run's one action
        is fixing the cause and Resume); a pending note says when it will apply."""
        try:
            allowed = run.allowed_actions()
        except Exception:  # noqa: BLE001 - a run without the method
            allowed = set()
        shown = new != FAILED and (new not in ENDED or bool(allowed))
        with self.presenter.lock:
            self._state = new
            set_traits(self.box.layout, display=None if shown else "none")
            if self.pending is not None:
                self._set_note("pending", self._pending_text())

    def on_steered(self, run: Any, change: Any) -> None:
        """Steering listener (training thread): show the value, mark the plot."""
        presenter = self.presenter
        with presenter.lock:
            presenter.tracker.mark(change)  # its place, and the learning-rate panel's label
            presenter.changed()
            if change.name == "learning_rate":
                self.pending = None
                where = f"applied from epoch {change.epoch + 1}, batch {change.batch + 1}"
                self._applied = where
                sent = set_traits(self.current, value=_current_html(change.new))
                sent += self._set_note("applied", where)
                presenter.throttle.spent(sent, presenter.throttle.clock())

    # -- the field (main thread) ----------------------------------------------------------

    def _on_edit(self, change: Any) -> None:
        """Every keystroke (the field syncs each one, so that Apply always reads what
        it shows): an entry corrected to a number clears the error of the last one.
        An entry that is not a number is explained at Apply (not while it is typed:
        "3e-" is on its way to "3e-4")."""
        try:
            parse_rate(change["new"])
        except ValueError:
            return
        with self.presenter.lock:
            if "nbtrain-lr-error" in self.note._dom_classes:
                self._restore_note()

    def _on_apply_click(self, _button: Any) -> None:
        try:
            value = parse_rate(self.value.value)
        except ValueError as exc:
            with self.presenter.lock:
                self._set_note("error", str(exc))
            return
        with self.presenter.lock:  # pending before the request: the loop may take it at once
            before, self.pending = self.pending, value
            self._set_note("pending", self._pending_text())
        try:
            self.run.set_learning_rate(value)
        except Exception as exc:  # a refused value, a run that cannot train any more
            with self.presenter.lock:
                if self.pending == value:
                    self.pending = before
                self._set_note("error", f"{type(exc).__name__}: {exc}")

    def _pending_text(self) -> str:
        if self._state in _TRAINING:
            return PENDING
        return PENDING + _GOES_ON.get(self._state, GOES_ON)

    def _restore_note(self) -> int:
        if self.pending is not None:
            return self._set_note("pending", self._pending_text())
        return self._set_note("applied" if self._applied else "", self._applied)

    def _set_note(self, kind: str, text: str) -> int:
        classes = ("nbtrain-lr-note", f"nbtrain-lr-{kind}") if kind else ("nbtrain-lr-note",)
        color = {"error": "#c62828", "pending": "#8d6e00"}.get(kind, "#555")
        value = (f"<span style='color:{color};white-space:nowrap'>{html.escape(text)}</span>"
                 if text else "")
        return set_traits(self.note, value=value, _dom_classes=classes)


def _current_html(lr: float | None) -> str:
    return (f"<span style='white-space:nowrap' title='the optimizer&#39;s learning rate "
            f"now'>learning rate <b>{lr_text(lr)}</b></span>")


__all__ = ["GOES_ON", "PENDING", "SteeringControls", "lr_text", "parse_rate"]
