"""The live plot's controls: y scale, smoothing and which metrics are shown.

`PlotOptions` is what the presenter's render applies (pure values);
`PlotControls` is its row of widgets above the plot.  A change is drawn at the
next render the throttle allows while training (so the rendering budget
holds), at once while paused or ended, and an ended run's snapshot is written
again with it: a saved notebook keeps the last choice.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets

SMOOTHING = (("auto", None), ("off", 0.0), ("0.6", 0.6), ("0.8", 0.8), ("0.9", 0.9),
             ("0.95", 0.95))
SCALES = (("auto", None), ("linear", False), ("log", True))


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
        """The panels to draw (all when no metric is chosen or none of them exists yet)."""
        if not self.metrics:
            return panels
        chosen = [panel for panel in panels if panel.name in self.metrics]
        return chosen or panels

    def apply(self, renderer: Any) -> None:
        """Set the renderer's scale and smoothing."""
        renderer.log_y = self.log_y
        renderer.smoothing = self.smoothing


class PlotControls:
    """The plot's controls of one dashboard (CSS class `nbtrain-plot-controls`).

    Args:
        presenter: the dashboard's `Presenter` (its `plot_options`, `replot`).

    Attributes:
        scale: y scale (`nbtrain-plot-scale`): auto, linear, log.
        smoothing: (`nbtrain-plot-smoothing`): auto, off or a weight.
        metrics: comma-separated metric names, empty for all (`nbtrain-plot-metrics`).

    Example:

    ```python
    controls = PlotControls.attach(dashboard.presenter)   # what Dashboard does
    controls.scale.value = True                           # log y
    ```
    """

    def __init__(self, presenter: Any):
        self.presenter = presenter
        style = {"description_width": "initial"}
        self.scale = widgets.Dropdown(options=SCALES, value=None, description="y",
                                      style=style, layout=widgets.Layout(width="120px"))
        self.smoothing = widgets.Dropdown(options=SMOOTHING, value=None, description="smoothing",
                                          style=style, layout=widgets.Layout(width="160px"))
        self.metrics = widgets.Text(value="", placeholder="all", description="metrics",
                                    continuous_update=False, style=style,
                                    layout=widgets.Layout(width="240px"))
        for widget, css in ((self.scale, "nbtrain-plot-scale"),
                            (self.smoothing, "nbtrain-plot-smoothing"),
                            (self.metrics, "nbtrain-plot-metrics")):
            widget.add_class(css)
            widget.observe(self._changed, names="value")
        self.box = widgets.HBox([self.scale, self.smoothing, self.metrics])
        self.box.add_class("nbtrain-plot-controls")

    @classmethod
    def attach(cls, presenter: Any) -> PlotControls:
        """Make the controls and put them in the dashboard just above the plot."""
        controls = cls(presenter)
        root, plot = presenter.view.root, presenter.view.plot
        rows = list(root.children)
        at = rows.index(plot) if plot in rows else len(rows)
        root.children = (*rows[:at], controls.box, *rows[at:])
        return controls

    def _changed(self, _change: Any) -> None:
        options = self.presenter.plot_options
        names = tuple(n.strip() for n in self.metrics.value.split(",") if n.strip())
        with self.presenter.lock:
            options.log_y = self.scale.value
            options.smoothing = self.smoothing.value
            options.metrics = names or None
        self.presenter.replot()


__all__ = ["SCALES", "SMOOTHING", "PlotControls", "PlotOptions"]
