"""The live plot: one panel per metric, drawn with matplotlib's object-oriented
API on an Agg canvas, encoded as PNG.

Never touches `matplotlib.pyplot`: the figure is a `matplotlib.figure.Figure`
owned by the renderer and reused between renders, so the training thread
never touches the user's pyplot state (current figure, backend, interactive
mode).  Axes, ticks and labels are drawn only when the limits or the layout
change; otherwise the saved background is restored and only the data lines
are drawn on it (blitting), which makes a typical render a few milliseconds.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator
from PIL import Image

from nbtrain.dashboard.tracker import Panel

TRAIN_COLOR = "#1f77b4"
VAL_COLOR = "#ff7f0e"
MARK_COLOR = "#7f7f7f"  # where a hyperparameter was changed (steering)
LOG_RATIO = 100.0
"""A loss whose largest value is this many times its smallest is drawn on a log scale."""
_MARGIN = 0.08
_HEADROOM = 0.3
_MAX_MARKERS = 60


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
    """True for a loss whose positive values span `LOG_RATIO` or more."""
    if "loss" not in name.lower():
        return False
    finite = [v[np.isfinite(v)] for v in values if len(v)]
    finite = [v for v in finite if len(v)]
    if not finite:
        return False
    data = np.concatenate(finite)
    if data.min() <= 0:
        return False
    return data.max() / data.min() >= LOG_RATIO


def _span(low: float, high: float, log: bool) -> float:
    """The data span the y limits are made for (in decades on a log axis); never
    zero, so that a flat series (one epoch, a constant metric) still gets limits."""
    if log:
        return max(math.log10(high) - math.log10(low), 0.1)
    return high - low if high > low else max(abs(high) * 0.1, 1e-3)


def _limits(low: float, high: float, log: bool,
            previous: tuple[float, float] | None) -> tuple[float, float]:
    """Y limits for data in [low, high]: a margin, and more room on a side the data
    just crossed (a falling loss keeps falling), so that the axes are redrawn rarely."""
    crossed_low = previous is not None and low < previous[0]
    crossed_high = previous is not None and high > previous[1]
    span = _span(low, high, log)
    if log:
        a, b = math.log10(low), math.log10(high)
        a -= span * (_HEADROOM if crossed_low else _MARGIN)
        b += span * (_HEADROOM if crossed_high else _MARGIN)
        return 10**a, 10**b
    a = low - span * (_HEADROOM if crossed_low else _MARGIN)
    b = high + span * (_HEADROOM if crossed_high else _MARGIN)
    if low >= 0 > a:
        a = 0.0  # a loss, an accuracy: never below zero
    return a, b


class _PanelArtists:
    """The axes of one metric and its four data lines."""

    def __init__(self, ax, name: str):
        self.ax = ax
        self.name = name
        self.raw = Line2D([], [], color=TRAIN_COLOR, alpha=0.25, linewidth=0.8, animated=True)
        self.smooth = Line2D([], [], color=TRAIN_COLOR, linewidth=1.5, animated=True)
        self.epochs = Line2D([], [], color=TRAIN_COLOR, marker="o", markersize=3.5, linestyle="none",
                             animated=True)
        self.val = Line2D([], [], color=VAL_COLOR, marker="o", markersize=3.5, linewidth=1.2,
                          animated=True)
        for line in self.lines:
            ax.add_line(line)
        self.log = False
        self.marks: tuple[float, ...] = ()
        self._mark_lines: list = []
        # an earlier run, faint and behind (not animated: part of the blitted background)
        self.overlay: Any = None
        self.ghost = Line2D([], [], color=TRAIN_COLOR, alpha=0.3, linewidth=1.0)
        self.ghost_val = Line2D([], [], color=VAL_COLOR, alpha=0.3, linewidth=1.0,
                                linestyle="--")
        ax.add_line(self.ghost)
        ax.add_line(self.ghost_val)
        self.style: tuple[str, str, str] = ("o", "none", "o")  # epoch markers, line; val markers
        self.ylim: tuple[float, float] | None = None
        self.xlim: tuple[float, float] | None = None

    @property
    def lines(self) -> tuple[Line2D, ...]:
        return self.raw, self.smooth, self.epochs, self.val

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
        self._mark_lines = [self.ax.axvline(x, color=MARK_COLOR, linestyle="--", linewidth=0.9)
                            for x in marks]
        self.marks = marks
        return True


class PlotRenderer:
    """Renders metric panels to PNG on a reused Agg figure.

    Args:
        width: figure width in inches.
        panel_height: height of one row of panels, in inches.
        dpi: dots per inch.
        max_columns: panels per row.

    Example:

    ```python
    renderer = PlotRenderer()
    png = renderer.render(tracker.panels(), tracker.x_range(epochs=20))
    image_widget.value = png
    ```
    """

    def __init__(self, width: float = 9.0, panel_height: float = 2.3, dpi: int = 80,
                 max_columns: int = 3):
        self.width = width
        self.panel_height = panel_height
        self.dpi = dpi
        self.max_columns = max_columns
        self.figure = Figure(figsize=(width, panel_height), dpi=dpi)
        self.canvas = FigureCanvasAgg(self.figure)
        self._panels: dict[str, _PanelArtists] = {}
        self._background = None
        self.full_draws = 0
        self.blits = 0
        self.size = (0, 0)
        self.log_y: bool | None = None  # None: per panel, by the metric's name and values
        self.smoothing: float | None = None  # TensorBoard's weight; None: a 30th of the points

    def smoothing_span(self) -> float | None:
        """The span `smooth` takes for the smoothing weight (None: its default)."""
        if self.smoothing is None:
            return None
        return 2.0 / (1.0 - self.smoothing) - 1.0

    def _layout(self, names: Sequence[str]) -> None:
        figure = self.figure
        figure.clear()
        n = len(names)
        columns = max(1, min(n, self.max_columns))
        rows = max(1, math.ceil(n / columns))
        height = self.panel_height * rows + 0.35
        figure.set_size_inches(self.width, height)
        figure.subplots_adjust(left=0.55 / self.width, right=1 - 0.15 / self.width,
                               bottom=0.42 / height, top=1 - 0.4 / height,
                               wspace=0.3, hspace=0.55 * 2.3 / self.panel_height)
        self._panels = {}
        for i, name in enumerate(names):
            ax = figure.add_subplot(rows, columns, i + 1)
            # a fixed title position: matplotlib then skips placing it at every draw
            ax.set_title(name, loc="left", fontsize=9, y=1.0, pad=3)
            ax.tick_params(labelsize=8)
            ax.grid(alpha=0.25, linewidth=0.6)
            ax.xaxis.set_major_locator(MaxNLocator(nbins=6, integer=True))
            ax.yaxis.set_major_locator(MaxNLocator(nbins=4))
            self._panels[name] = _PanelArtists(ax, name)
        # a legend and an axis label as plain figure texts: cheaper to draw than a Legend
        top = 1 - 0.06 / height
        figure.text(1 - 0.15 / self.width, top, "● val", color=VAL_COLOR, fontsize=8,
                    ha="right", va="top")
        figure.text(1 - 0.65 / self.width, top, "— train", color=TRAIN_COLOR, fontsize=8,
                    ha="right", va="top")
        figure.text(0.5, 0.02 / height, "epoch", fontsize=8, ha="center", va="bottom")
        self._background = None

    def _update(self, panel: Panel, artists: _PanelArtists, x_range: tuple[float, float]) -> bool:
        """Set the lines' data; True when the axes must be redrawn (limits or scale changed)."""
        bx, by = panel.batch
        ex, ey = panel.epochs
        vx, vy = panel.val
        artists.raw.set_data(bx, by)
        artists.smooth.set_data(bx, smooth(by, self.smoothing_span()))
        artists.epochs.set_data(ex, ey)
        artists.val.set_data(vx, vy)
        many = len(ex) > _MAX_MARKERS
        style = ("none" if many else "o", "-" if many or not len(bx) else "none",
                 "none" if len(vx) > _MAX_MARKERS else "o")
        if style != artists.style:  # setting a marker costs a MarkerStyle: only on a change
            artists.epochs.set_marker(style[0])
            artists.epochs.set_linestyle(style[1])
            artists.val.set_marker(style[2])
            artists.style = style

        stale = artists.set_marks(panel.marks)
        stale |= artists.set_overlay(panel.overlay)
        ax = artists.ax
        log = self.log_y if self.log_y is not None else use_log_scale(panel.name, (by, ey, vy))
        if log and not all(np.all(v[np.isfinite(v)] > 0) for v in (by, ey, vy)):
            log = False  # a log axis cannot show values <= 0
        if log != artists.log:
            ax.set_yscale("log" if log else "linear", **({"nonpositive": "mask"} if log else {}))
            if not log:
                ax.yaxis.set_major_locator(MaxNLocator(nbins=4))
            artists.log, artists.ylim, stale = log, None, True
        if artists.xlim != x_range:
            ax.set_xlim(*x_range)
            artists.xlim, stale = x_range, True
        shown = (by, ey, vy)
        if panel.overlay is not None:
            shown += (panel.overlay[0][1], panel.overlay[1][1])
        values = [v[np.isfinite(v)] for v in shown]
        values = [v[v > 0] if log else v for v in values]
        values = [v for v in values if len(v)]
        if values:
            low = min(float(v.min()) for v in values)
            high = max(float(v.max()) for v in values)
            if not self._fits(artists, low, high):
                artists.ylim = _limits(low, high, log, artists.ylim)
                ax.set_ylim(*artists.ylim)
                stale = True
        return stale

    @staticmethod
    def _fits(artists: _PanelArtists, low: float, high: float) -> bool:
        """Whether the current y limits show [low, high] without wasting most of the height."""
        if artists.ylim is None:
            return False
        a, b = artists.ylim
        if low < a or high > b:
            return False
        if artists.log:
            a, b = math.log10(a), math.log10(b)
        return _span(low, high, artists.log) >= 0.4 * (b - a)

    def render(self, panels: Sequence[Panel], x_range: tuple[float, float]) -> bytes:
        """Draw `panels` and return the figure as PNG bytes.

        Args:
            panels: what to draw, one panel per metric (see `MetricTracker.panels`).
            x_range: the x-axis span in epochs.
        """
        names = [p.name for p in panels]
        if names != list(self._panels):
            self._layout(names)
        stale = False
        for panel in panels:
            stale |= self._update(panel, self._panels[panel.name], x_range)
        if stale or self._background is None:
            self.canvas.draw()
            self._background = self.canvas.copy_from_bbox(self.figure.bbox)
            self.full_draws += 1
        else:
            self.canvas.restore_region(self._background)
            self.blits += 1
        for artists in self._panels.values():
            for line in artists.lines:
                artists.ax.draw_artist(line)
        return self._png()

    def _png(self) -> bytes:
        rgba = np.asarray(self.canvas.buffer_rgba())
        self.size = (rgba.shape[1], rgba.shape[0])
        out = io.BytesIO()
        Image.fromarray(rgba[..., :3]).save(out, format="png", compress_level=6)
        return out.getvalue()
