"""The live plot's controls: y scale, smoothing and which metrics are shown.

`PlotOptions` is what the presenter's render applies (pure values);
`PlotControls` is its row of widgets above the plot.  A change is drawn at the
next render the throttle allows while training (so the rendering budget
holds), at once while paused or ended, and an ended run's snapshot is written
again with it: a saved notebook keeps the last choice.

The dropdowns' option values are their labels (strings): in ipywidgets 8 a
`Dropdown` whose value is None has no selection (index None), and the page
shows it blank, so "auto" cannot be None there; `SCALES` and `SMOOTHING` map
each label to what `PlotOptions` takes.  The metrics are toggle buttons, one
per metric that exists (shown as metrics appear), never free text.  Metrics
appear while training, when the plot is published on the render thread, but
widgets are made on the thread that makes the dashboard: `SPARE_TOGGLES`
toggles are made with it, and shown as they are given to metrics (a model
with more panels than that gets the rest made where they appear).
"""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets

from nbtrain.dashboard.tracker import LEARNING_RATE
from nbtrain.run.state import FAILED

SMOOTHING = (("auto", None), ("off", 0.0), ("0.6", 0.6), ("0.8", 0.8), ("0.9", 0.9),
             ("0.95", 0.95))
"""The smoothing dropdown: label -> `PlotOptions.smoothing`."""
SCALES = (("auto", None), ("linear", False), ("log", True))
"""The y-scale dropdown: label -> `PlotOptions.log_y`."""
SPARE_TOGGLES = 8
"""Metric toggles made with the dashboard, before any metric is known."""


class PlotOptions:
    """How the live plot is drawn.

    Attributes:
        log_y: True log, False linear, None chosen per panel by its values.
        smoothing: TensorBoard's smoothing weight in [0, 1); None: the default.
        metrics: the metric names to draw (None: all).
    """

    def __init__(self) -> None:
        self.log_y: bool | None = None
        self.smoothing: float | None = None
        self.metrics: tuple[str, ...] | None = None

    def select(self, panels: list) -> list:
        """The metric panels to draw: the chosen ones (all when none is chosen, or when
        none of them exists yet and the learning rate is not chosen either)."""
        if not self.metrics:
            return panels
        chosen = [panel for panel in panels if panel.name in self.metrics]
        return chosen if chosen or LEARNING_RATE in self.metrics else panels

    def apply(self, renderer: Any) -> None:
        """Set the renderer's scale and smoothing."""
        renderer.log_y = self.log_y
        renderer.smoothing = self.smoothing


def _dropdown(choices: tuple, description: str, css: str, width: str) -> widgets.Dropdown:
    labels = [label for label, _ in choices]
    return widgets.Dropdown(options=labels, value=labels[0], description=description,
                            style={"description_width": "initial"}, _dom_classes=(css,),
                            layout=widgets.Layout(width=width))


def _toggle() -> widgets.ToggleButton:
    """A metric toggle, not shown until it is given a metric (its name; its class
    then says it is one: `nbtrain-plot-metric`)."""
    return widgets.ToggleButton(value=True, icon="check", _dom_classes=("nbtrain-plot-spare",),
                                layout=widgets.Layout(width="auto", height="24px",
                                                      margin="2px 2px"))


class PlotControls:
    """The plot's controls of one dashboard (CSS class `nbtrain-plot-controls`).

    Hidden (its room kept) until the first plot is shown; not shown at all for
    a failed run.

    Args:
        presenter: the dashboard's `Presenter` (its `plot_options`, `replot`,
            `tracker` and `view.plot`).

    Attributes:
        scale: y scale (`nbtrain-plot-scale`): "auto", "linear", "log".
        smoothing: (`nbtrain-plot-smoothing`): "auto", "off" or a weight ("0.6" ...).
        metrics: a row of toggle buttons (`nbtrain-plot-metrics`), one per metric
            (`nbtrain-plot-metric`), pressed when its panel is drawn.

    Example:

    ```python
    controls = PlotControls.attach(dashboard.presenter)   # what Dashboard does
    controls.scale.value = "log"
    controls.toggles["accuracy"].value = False            # hide the accuracy panel
    ```
    """

    def __init__(self, presenter: Any):
        self.presenter = presenter
        self.scale = _dropdown(SCALES, "y scale", "nbtrain-plot-scale", "150px")
        self.smoothing = _dropdown(SMOOTHING, "smoothing", "nbtrain-plot-smoothing", "160px")
        self.toggles: dict[str, widgets.ToggleButton] = {}
        self._seen: tuple[int, bool] | None = None  # the metrics and rate known at the last look
        # the spare toggles wait, hidden, in the controls' box (closed with the dashboard)
        self.spares = widgets.HBox([_toggle() for _ in range(SPARE_TOGGLES)],
                                   layout=widgets.Layout(display="none"))
        for toggle in self.spares.children:
            toggle.observe(self._toggled, names="value")
        self.metrics = widgets.HBox([], _dom_classes=("nbtrain-plot-metrics",),
                                    layout=widgets.Layout(margin="0 0 0 8px"))
        for widget in (self.scale, self.smoothing):
            widget.observe(self._changed, names="value")
        self.box = widgets.HBox([self.scale, self.smoothing, self.metrics, self.spares],
                                _dom_classes=("nbtrain-plot-controls",),
                                layout=widgets.Layout(visibility="hidden"))
        presenter.deferred.append(self._refresh)

    @classmethod
    def attach(cls, presenter: Any) -> PlotControls:
        """Make the controls and put them in the dashboard just above the plot."""
        controls = cls(presenter)
        root, plot = presenter.view.root, presenter.view.plot
        rows = list(root.children)
        at = rows.index(plot) if plot in rows else len(rows)
        root.children = (*rows[:at], controls.box, *rows[at:])
        return controls

    @property
    def shown(self) -> bool:
        """The controls are visible (a plot exists and the run did not fail)."""
        layout = self.box.layout
        return layout.visibility != "hidden" and layout.display != "none"

    def show_for(self, state: str) -> None:
        """The run's state changed: no plot controls for a failed run."""
        self.box.layout.display = "none" if state == FAILED else None

    def _refresh(self) -> int:
        """After a plot image was shown: show the controls, and a toggle for each
        metric that has appeared since (a `Presenter.deferred` change: called by an
        update, under the presenter's lock).  Returns the widget messages sent."""
        if not self.presenter.view.drawn:
            return 0  # the blank stand-in that keeps the plot's room
        sent = 0
        if self.box.layout.visibility == "hidden":
            self.box.layout.visibility = None
            sent += 1
        tracker = self.presenter.tracker
        seen = (len(tracker.metrics), bool(tracker.rate_history.rates))
        if seen == self._seen:
            return sent
        self._seen = seen
        # the panels the plot has: the metrics' (`panels`), then the learning rate's
        names = [panel.name for panel in tracker.panels()]
        if seen[1]:
            names.append(LEARNING_RATE)
        new = [name for name in names if name not in self.toggles]
        if not new:
            return sent
        spare = list(self.spares.children)
        for name in new:
            if spare:
                toggle = spare.pop(0)
            else:  # more panels than spare toggles: made here
                toggle = _toggle()
                toggle.observe(self._toggled, names="value")
            with toggle.hold_sync():  # one message a toggle
                toggle.description, toggle.tooltip = name, f"Show the {name} panel"
                toggle._dom_classes = ("nbtrain-plot-metric",)
            self.toggles[name] = toggle
        self.metrics.children = tuple(self.toggles.values())
        self.spares.children = tuple(spare)
        self._set_metrics()
        return sent + len(new) + 2

    def _toggled(self, change: Any) -> None:
        change["owner"].icon = "check" if change["new"] else ""  # pressed reads as chosen
        if not any(toggle.value for toggle in self.toggles.values()):
            change["owner"].value = True  # the last panel shown stays: an empty plot says nothing
            return
        with self.presenter.lock:
            self._set_metrics()
        self.presenter.replot()

    def _set_metrics(self) -> None:
        chosen = tuple(name for name, toggle in self.toggles.items() if toggle.value)
        self.presenter.plot_options.metrics = (
            None if len(chosen) == len(self.toggles) else chosen)

    def _changed(self, _change: Any) -> None:
        options = self.presenter.plot_options
        with self.presenter.lock:
            options.log_y = dict(SCALES)[self.scale.value]
            options.smoothing = dict(SMOOTHING)[self.smoothing.value]
        self.presenter.replot()


__all__ = ["SCALES", "SMOOTHING", "PlotControls", "PlotOptions"]
