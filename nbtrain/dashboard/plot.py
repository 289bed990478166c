"""The live plot: one panel per metric and one for the learning rate, drawn with
matplotlib's object-oriented API on an Agg canvas, encoded as PNG.

Never touches `matplotlib.pyplot`: the figure is a `matplotlib.figure.Figure`
owned by the renderer and reused between renders, so rendering never touches
the user's pyplot state (current figure, backend, interactive mode).  Axes,
ticks, labels and legends are drawn only when the limits, the scale or the
legend change; otherwise the saved background is restored and only the data
lines are drawn on it (blitting), which makes a typical render a few
milliseconds.  How the axes read (scale, limits, ticks, legend) is
`nbtrain.dashboard.axes`, shared with `nbtrain.compare`.

What a panel shows: the training values per batch (a faint raw line and its
smoothed curve), the epoch means and the validation values at each epoch's
end (x = 1 is the end of the first epoch), an earlier run faintly behind
(`compare_with`), dashed lines where a hyperparameter changed; its legend
lists exactly those that are drawn, as they are drawn.  The learning-rate
panel is its whole history as steps on a log axis, each change marked and
labelled with its value, epoch and batch.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from nbtrain.dashboard import axes as ax_rules
from nbtrain.dashboard import pngfile
from nbtrain.dashboard.axes import LOG_RATIO, RATE, ScaleChoice, metric_kind
from nbtrain.dashboard.tracker import Panel

TRAIN_COLOR = "#1f77b4"
VAL_COLOR = "#ff7f0e"
RATE_COLOR = "#2ca02c"
MARK_COLOR = "#7f7f7f"  # where a hyperparameter was changed (steering)
_MAX_MARKERS = 60
_FONT = 8


def smooth(y: np.ndarray, span: float | None = None) -> np.ndarray:
    """An exponential moving average of `y`, debiased at the start (as TensorBoard does).

    Args:
        y: the values.
        span: the average's span in points (default: a 30th of the points, at least 1).

    Example:

    ```python
    smooth(np.array([1.0, 3.0, 2.0]), span=1)  # -> the values unchanged
    ```
    """
    n = len(y)
    if span is None:
        span = max(1.0, n / 30.0)
    if n == 0 or span <= 1:
        return y.copy()
    alpha = 2.0 / (span + 1.0)
    out = np.empty(n)
    acc = 0.0
    weight = 0.0
    keep = 1.0 - alpha
    for i, value in enumerate(y.tolist()):
        acc = keep * acc + alpha * value
        weight = keep * weight + alpha
        out[i] = acc / weight
    return out


def use_log_scale(name: str, values: Sequence[np.ndarray]) -> bool:
    """True for a loss whose positive values span `LOG_RATIO` or more (the automatic
    choice of a fresh panel; see `axes.ScaleChoice`)."""
    if metric_kind(name) != ax_rules.LOSS:
        return False
    data = ax_rules.finite(values)
    if not len(data) or data.min() <= 0:
        return False
    return data.max() / data.min() >= LOG_RATIO


class _PanelArtists:
    """The axes of one panel, its data lines (redrawn at every render) and what
    belongs to its background (legend, marks, an earlier run, change labels)."""

    def __init__(self, ax, name: str):
        self.ax = ax
        self.name = name
        self.kind = metric_kind(name)
        self.scale = ScaleChoice(self.kind)
        ax_rules.style_axes(ax, name, fontsize=_FONT)
        self.note = ax.set_title("", loc="right", fontsize=_FONT - 1, color=MARK_COLOR,
                                 y=1.0, pad=3)
        if self.kind == RATE:
            self.step = Line2D([], [], color=RATE_COLOR, linewidth=1.5, drawstyle="steps-post",
                               label="learning rate", animated=True)
            self.dots = Line2D([], [], color=RATE_COLOR, marker="o", markersize=4,
                               linestyle="none", label="_changes", animated=True)
            self.data_lines: tuple[Line2D, ...] = (self.step, self.dots)
        else:
            self.raw = Line2D([], [], color=TRAIN_COLOR, alpha=0.25, linewidth=0.8,
                              label="_raw", animated=True)
            self.smooth = Line2D([], [], color=TRAIN_COLOR, linewidth=1.5, label="training",
                                 animated=True)
            self.epochs = Line2D([], [], color=TRAIN_COLOR, marker="o", markersize=3.5,
                                 linestyle="none", label="epoch mean", animated=True)
            self.val = Line2D([], [], color=VAL_COLOR, marker="o", markersize=3.5,
                              linewidth=1.2, label="validation", animated=True)
            self.data_lines = (self.raw, self.smooth, self.epochs, self.val)
        for line in self.data_lines:
            ax.add_line(line)
        # an earlier run, faint and behind (not animated: part of the blitted background)
        self.overlay: Any = None
        self.ghost = Line2D([], [], color=TRAIN_COLOR, alpha=0.35, linewidth=1.0,
                            label="earlier run")
        self.ghost_val = Line2D([], [], color=VAL_COLOR, alpha=0.35, linewidth=1.0,
                                linestyle="--", label="earlier validation")
        ax.add_line(self.ghost)
        ax.add_line(self.ghost_val)
        self.log = False
        self.marks: tuple[float, ...] = ()
        self._mark_lines: list = []
        self.changes: tuple = ()
        self._labels: list = []
        self.style: tuple = ()  # how the lines are drawn (the legend follows it)
        self.legend: Any = None  # put back over the lines at every render
        self.ylim: tuple[float, float] | None = None
        self.xlim: tuple[float, float] | None = None

    @property
    def lines(self) -> tuple[Line2D, ...]:
        """The data lines, drawn at every render."""
        return self.data_lines

    def legend_lines(self) -> list[Line2D]:
        """Every line a legend may list (those drawn: see `axes.legend_handles`)."""
        return [*self.data_lines, self.ghost, self.ghost_val]

    def set_overlay(self, overlay: Any) -> bool:
        """Show an earlier run's `((x, train), (x, val))` faintly; True if it changed."""
        if overlay is self.overlay:
            return False
        (tx, ty), (vx, vy) = overlay if overlay is not None else (([], []), ([], []))
        self.ghost.set_data(tx, ty)
        self.ghost_val.set_data(vx, vy)
        self.overlay = overlay
        return True

    def set_marks(self, marks: tuple[float, ...]) -> bool:
        """Dashed vertical lines where a hyperparameter changed; True if they changed
        (they are part of the background, drawn again only then)."""
        if marks == self.marks:
            return False
        for line in self._mark_lines:
            line.remove()
        self._mark_lines = [self.ax.axvline(x, color=MARK_COLOR, linestyle="--", linewidth=0.9,
                                            label="_mark") for x in marks]
        self.marks = marks
        return True

    def set_changes(self, changes: tuple, values: Any = ()) -> bool:
        """The learning-rate panel: a label at its first value (the value) and at each
        change (its value, then the epoch and batch it landed on); `values`: the
        step line's values (the first, then each change's), to know which way each
        change went.  True if they changed."""
        if changes == self.changes:
            return False
        for text in self._labels:
            text.remove()
        self._labels = []
        values = list(values)
        for i, change in enumerate(changes):
            where = f"\nepoch {change.epoch}" + (
                f", batch {change.batch}" if change.batch is not None else "")
            if i == 0:
                where = ""  # the value it started with: the value says it all
            text = self.ax.annotate(f"{ax_rules.rate_text(change.value)}{where}",
                                    (change.x, change.value), xytext=(4, 3),
                                    textcoords="offset points", fontsize=_FONT - 1,
                                    color=RATE_COLOR, ha="left", va="bottom",
                                    linespacing=1.0, annotation_clip=False)
            text.falling = i == 0 or (i < len(values) and change.value < values[i - 1])
            self._labels.append(text)
        self.changes = changes
        return True

    # where a change's label goes, in order of preference: beside the new level, away
    # from the step's vertical line and from the old level
    _FALLING = (("left", "bottom", 4, 3), ("right", "top", -4, -3), ("left", "top", 4, -3),
                ("right", "bottom", -4, 3))
    _RISING = (("left", "top", 4, -3), ("right", "bottom", -4, 3), ("left", "bottom", 4, 3),
               ("right", "top", -4, -3))

    def place_labels(self, renderer: Any) -> None:
        """Keep the change labels inside the panel, apart and off the step line: each
        at the first place that fits (`_FALLING`, `_RISING`), else moved into the
        panel; an older one that would still overlap a newer one is hidden (its
        marker and dashed line stay)."""
        box = self.ax.get_window_extent(renderer)
        points = 72.0 / self.ax.figure.dpi  # pixels to points
        kept: list = []

        def put(text: Any, place: tuple) -> Any:
            ha, va, dx, dy = place
            text.set_ha(ha)
            text.set_va(va)
            text.set_position((dx, dy))
            return text.get_window_extent(renderer)

        def inside(extent: Any) -> bool:
            return (box.x0 <= extent.x0 and extent.x1 <= box.x1 and box.y0 <= extent.y0
                    and extent.y1 <= box.y1)

        for text in reversed(self._labels):  # the newest first
            text.set_visible(True)
            places = self._FALLING if getattr(text, "falling", True) else self._RISING
            chosen = None
            for place in places:
                extent = put(text, place)
                if inside(extent) and not any(extent.overlaps(k) for k in kept):
                    chosen = extent
                    break
            if chosen is None:  # nowhere whole: the first place, moved into the panel
                ha, va, dx, dy = places[0]
                extent = put(text, places[0])
                dx += (min(0.0, box.x1 - extent.x1 - 1) + max(0.0, box.x0 - extent.x0 + 1)) * points
                dy += (min(0.0, box.y1 - extent.y1 - 1) + max(0.0, box.y0 - extent.y0 + 1)) * points
                extent = put(text, (ha, va, dx, dy))
                if not any(extent.overlaps(k) for k in kept):
                    chosen = extent
            if chosen is not None:
                kept.append(chosen)
            text.set_visible(chosen is not None)


class PlotRenderer:
    """Renders panels to PNG on a reused Agg figure.

    Args:
        width: figure width in inches.
        panel_height: height of one row of panels, in inches.
        dpi: dots per inch.
        max_columns: panels per row.

    Attributes:
        log_y: the y scale asked for: None automatic (per panel), False linear,
            True log (see `axes.ScaleChoice`: a bounded score stays linear, the
            learning rate stays log).
        smoothing: TensorBoard's smoothing weight in [0, 1); None: a 30th of the points.

    Example:

    ```python
    renderer = PlotRenderer()
    png = renderer.render(tracker.panels(), tracker.x_range(epochs=20))
    image_widget.value = png
    ```
    """

    def __init__(self, width: float = 9.0, panel_height: float = 2.65, dpi: int = 100,
                 max_columns: int = 3):
        self.width = width
        self.panel_height = panel_height
        self.dpi = dpi
        self.max_columns = max_columns
        self.figure = Figure(figsize=(width, panel_height), dpi=dpi)
        self.canvas = FigureCanvasAgg(self.figure)
        self._panels: dict[str, _PanelArtists] = {}
        self._background = None
        self._legends: list = []
        self.full_draws = 0
        self.blits = 0
        self.size = (0, 0)
        self.log_y: bool | None = None
        self.smoothing: float | None = None

    def smoothing_span(self) -> float | None:
        """The span `smooth` takes for the smoothing weight (None: its default)."""
        if self.smoothing is None:
            return None
        return 2.0 / (1.0 - self.smoothing) - 1.0

    @property
    def panel_artists(self) -> dict[str, Any]:
        """The panels drawn, by name (their axes: `.ax`; their data lines: `.lines`)."""
        return dict(self._panels)

    def _layout(self, names: Sequence[str]) -> None:
        self.figure.clear()
        grid = ax_rules.panel_grid(self.figure, len(names), self.max_columns, self.width,
                                   self.panel_height)
        self._panels = {name: _PanelArtists(ax, name) for ax, name in zip(grid, names)}
        self._background = None

    def _set_styles(self, panel: Panel, artists: _PanelArtists) -> bool:
        """The lines' data and how they are drawn; True when the legend must follow."""
        if artists.kind == RATE:
            x, y = panel.batch
            artists.step.set_data(x, y)
            artists.dots.set_data([c.x for c in panel.changes], [c.value for c in panel.changes])
            return False
        bx, by = panel.batch
        ex, ey = panel.epochs
        vx, vy = panel.val
        smoothed = self.smoothing != 0.0 and len(bx) > 2
        artists.raw.set_data(bx, by)
        if smoothed:
            artists.smooth.set_data(bx, smooth(by, self.smoothing_span()))
        else:
            artists.smooth.set_data([], [])
        artists.epochs.set_data(ex, ey)
        artists.val.set_data(vx, vy)
        many = len(ex) > _MAX_MARKERS
        style = ("none" if many else "o", "-" if many or not len(bx) else "none",
                 "none" if len(vx) > _MAX_MARKERS else "o", smoothed,
                 bool(len(bx)), bool(len(ex)), bool(len(vx)))
        if style == artists.style:
            return False
        artists.epochs.set_marker(style[0])  # a MarkerStyle costs: only on a change
        artists.epochs.set_linestyle(style[1])
        artists.val.set_marker(style[2])
        raw = artists.raw
        raw.set_alpha(0.25 if smoothed else 1.0)
        raw.set_linewidth(0.8 if smoothed else 1.2)
        raw.set_label("_raw" if smoothed else "training")
        artists.epochs.set_label("epoch mean" if len(bx) else "training")
        artists.style = style
        return True

    def _update(self, panel: Panel, artists: _PanelArtists, x_range: tuple[float, float]) -> bool:
        """Set the lines' data; True when the background must be redrawn (limits,
        scale, legend, marks changed)."""
        stale = self._set_styles(panel, artists)
        legend = stale or artists.legend is None
        marks = artists.set_marks(panel.marks)
        stale |= marks or artists.set_overlay(panel.overlay)
        changes = artists.set_changes(panel.changes, panel.batch[1])
        stale |= changes
        # the limits fit what reads: the smoothed curve (the raw batches, faint, may
        # leave the axes), the epoch means, the validation values, an earlier run
        smoothed = artists.kind != RATE and len(artists.smooth.get_xdata())
        batch = artists.smooth.get_ydata() if smoothed else panel.batch[1]
        shown = [np.asarray(batch, dtype=float), panel.epochs[1], panel.val[1]]
        if panel.overlay is not None:
            shown += [panel.overlay[0][1], panel.overlay[1][1]]
        values = ax_rules.finite(shown)
        ax = artists.ax
        log = artists.scale.choose(self.log_y, values)
        if log != artists.log:
            ax_rules.set_y_scale(ax, log)
            artists.note.set_text("log scale" if log else "")
            artists.log, artists.ylim, stale = log, None, True
        if artists.xlim != x_range:
            ax.set_xlim(*x_range)
            artists.xlim, stale = x_range, True
        if log:
            values = values[values > 0]
        if len(values):
            low, high = float(values.min()), float(values.max())
            if not ax_rules.fits(artists.ylim, low, high, log):
                artists.ylim = ax_rules.y_limits(low, high, log, artists.kind, artists.ylim)
                ax.set_ylim(*artists.ylim)
                stale = True
        if (legend or stale) and artists.kind != RATE:  # placed anew at each full draw
            artists.legend = ax_rules.draw_legend(ax, artists.legend_lines())
            stale = True
        if changes or (stale and artists.changes):
            artists.place_labels(self.canvas.get_renderer())
        return stale

    def render(self, panels: Sequence[Panel], x_range: tuple[float, float]) -> bytes:
        """Draw `panels` and return the figure as PNG bytes.

        Args:
            panels: what to draw, one panel per metric (see `MetricTracker.panels`)
                and the learning rate's (`MetricTracker.rate_panel`).
            x_range: the x-axis span in epochs.
        """
        names = [p.name for p in panels]
        if names != list(self._panels):
            self._layout(names)
        stale = False
        for panel in panels:
            stale |= self._update(panel, self._panels[panel.name], x_range)
        canvas = self.canvas
        if stale or self._background is None:
            canvas.draw()
            self._background = canvas.copy_from_bbox(self.figure.bbox)
            # the legends' pixels, put back over the lines at every render: no line
            # crosses a legend, and a legend costs a copy, not a text layout
            renderer = canvas.get_renderer()
            self._legends = [canvas.copy_from_bbox(a.legend.get_window_extent(renderer))
                             for a in self._panels.values() if a.legend is not None]
            self.full_draws += 1
        else:
            canvas.restore_region(self._background)
            self.blits += 1
        for artists in self._panels.values():
            for line in artists.lines:
                artists.ax.draw_artist(line)
        for region in self._legends:
            canvas.restore_region(region)
        return self._png()

    def begin_again(self) -> None:
        """Ready for another dashboard's plot (`take_renderer`): its first render draws
        what a new renderer would (scales chosen and limits fitted afresh; marks,
        labels, an earlier run and the legend follow the new panels), without
        laying the figure out again when the panels are the same."""
        for artists in self._panels.values():
            artists.scale = ScaleChoice(artists.kind)
            artists.xlim = artists.ylim = None
        self._background = None
        self.full_draws = self.blits = 0
        self.log_y = self.smoothing = None

    def _png(self) -> bytes:
        rgba = np.asarray(self.canvas.buffer_rgba())
        self.size = (rgba.shape[1], rgba.shape[0])
        return pngfile.rgb_png(rgba[..., :3])


_shelf: list[PlotRenderer] = []  # at most one renderer, given back by a plot that ended
_shelf_lock = threading.Lock()


def take_renderer() -> PlotRenderer:
    """A renderer for a dashboard's plot: the one the last ended plot gave back
    (`give_back`), its figure laid out already (for the same panels a first render
    skips the layout, about a third of its cost), else a new one."""
    with _shelf_lock:
        renderer = _shelf.pop() if _shelf else None
    if renderer is None:
        return PlotRenderer()
    renderer.begin_again()
    return renderer


def give_back(renderer: PlotRenderer) -> None:
    """Keep `renderer` for the next dashboard's plot (one is kept at most: the bulk of
    a dashboard's memory is its figure)."""
    with _shelf_lock:
        _shelf[:] = [renderer]
