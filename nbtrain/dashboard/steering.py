"""`SteeringControls`: the dashboard's learning-rate field, bound to a Run.

It shows the optimizer's learning rate now, and a field with an Apply button
(enabled while the run is running, pausing or paused) that calls
`run.set_learning_rate`; the value takes effect before the next batch.  Every
change (from the field, from code, from `%nbtrain lr`) updates the shown
value (with where it landed) and marks its position on the plot.

Clicks arrive on the main thread; changes arrive on the training thread
through the Run's steering listener, and only set widget values.
"""

from __future__ import annotations

from typing import Any, Callable

import ipywidgets as widgets

from nbtrain.dashboard.view import set_traits
from nbtrain.run.state import PAUSED, PAUSING, RUNNING

_APPLICABLE = (RUNNING, PAUSING, PAUSED)


def _classed(cls: type, css: str, **traits: Any) -> widgets.DOMWidget:
    widget = cls(**traits)
    widget.add_class(css)
    return widget


class SteeringControls:
    """The learning-rate display and field of one dashboard.

    Args:
        dashboard: the `Dashboard` (its `presenter` and `message`).
        run: the `nbtrain.Run` it steers.

    Attributes:
        box: the widgets (CSS class `nbtrain-steering`), a row below the controls.
        current: the learning rate shown (`nbtrain-lr-current`).
        value: the field (`nbtrain-lr-value`).
        apply: the button (`nbtrain-lr-apply`).

    Example:

    ```python
    steering = SteeringControls.attach(dashboard, run)   # what Dashboard.bind does
    ```
    """

    def __init__(self, dashboard: Any, run: Any):
        self.dashboard = dashboard
        self.presenter = dashboard.presenter
        self.run = run
        lr = run.learning_rate
        self.current = _classed(widgets.HTML, "nbtrain-lr-current", value=_current_html(lr),
                                layout=widgets.Layout(margin="0 12px 0 4px"))
        self.value = _classed(widgets.FloatText, "nbtrain-lr-value", value=lr or 0.0,
                              description="set to", step=None,
                              layout=widgets.Layout(width="160px"),
                              style={"description_width": "initial"})
        self.apply = _classed(widgets.Button, "nbtrain-lr-apply", description="Apply",
                              icon="check", disabled=True,
                              tooltip="Set the learning rate from the next batch",
                              layout=widgets.Layout(width="90px"))
        self.box = _classed(widgets.HBox, "nbtrain-steering",
                            children=[self.current, self.value, self.apply])
        self.apply.on_click(self._on_apply_click)
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
        """Listener: Apply is enabled while the run is running, pausing or paused."""
        enabled = new in _APPLICABLE and "stop" in run.allowed_actions()
        with self.presenter.lock:
            set_traits(self.apply, disabled=not enabled)

    def on_steered(self, run: Any, change: Any) -> None:
        """Steering listener (training thread): show the value, mark the plot."""
        presenter = self.presenter
        with presenter.lock:
            presenter.tracker.mark(change.x)
            presenter.changed()
            if change.name == "learning_rate":
                where = f"from epoch {change.epoch + 1}, batch {change.batch + 1}"
                sent = set_traits(self.current, value=_current_html(change.new, where))
                presenter.throttle.spent(sent, presenter.throttle.clock())

    def _on_apply_click(self, _button: Any) -> None:
        try:
            self.run.set_learning_rate(self.value.value)
        except Exception as exc:  # a bad value, or the run ended meanwhile
            self.dashboard.message(f"{type(exc).__name__}: {exc}")


def _current_html(lr: float | None, where: str = "") -> str:
    shown = "—" if lr is None else f"{lr:.4g}"
    since = f" <small style='white-space:nowrap'>({where})</small>" if where else ""
    return (f"<span style='white-space:nowrap' title='the optimizer&#39;s learning rate "
            f"now'>learning rate <b>{shown}</b>{since}</span>")


__all__ = ["SteeringControls"]
