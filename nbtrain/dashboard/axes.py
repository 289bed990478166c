"""How a metric's axes read: the rules the live plot (`plot.py`) and
`nbtrain.compare` (`compare.py`) share.

- What kind of metric a panel shows (`metric_kind`): a loss-like value (lower
  is better), a bounded score (accuracy, AUC, precision ... in [0, 1]), the
  learning rate, or anything else.
- Its y scale (`ScaleChoice`): the learning rate always on a log axis (its
  whole history, steps of 3x or 10x visible); a loss on a log axis only when
  its positive values span `LOG_RATIO` or more (and, once chosen, kept for the
  run: the scale never flips back and forth silently; a "log scale" note sits
  at the panel's top right); a bounded score never (not even when the user asks
  for log: the choice applies to the panels where it means something).
- Its y limits (`y_limits`): a margin around the data, more room on the side
  the data just crossed (few redraws), never below zero for values that are
  not, a bounded score inside [0, 1], at least a decade on a log axis.
- Its ticks (`LogTicks`, `TickText`): on a log axis decades when the data span
  them, else 1-2-5 steps, and no labelled minor ticks; labels written as a
  person writes numbers (`0.01`, `250`, `3e-4`), one style per axis, as few
  digits as keep them apart, no offset text ("x10^-1") to misread or clip.
- The x axis (`tracker.x_limits`): it grows with the data to the next round number of
  epochs, not to the last epoch of the run.
- The legend (`legend_handles`): exactly the lines drawn (their own artists,
  so their markers and line styles), nothing for an empty series.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from matplotlib.ticker import Formatter, Locator, MaxNLocator, NullFormatter, NullLocator

from nbtrain.dashboard.tracker import best_direction, round_up, x_limits

LOSS, BOUNDED, RATE, OTHER = "loss", "bounded", "rate", "other"
LOG_RATIO = 100.0
"""A loss whose largest value is this many times its smallest is drawn on a log scale."""
MARGIN = 0.08
HEADROOM = 0.3
_BOUNDED_HINTS = ("accuracy", "acc", "auc", "precision", "recall", "f1", "fbeta", "iou",
                  "specificity", "sensitivity", "dice", "jaccard")


def is_rate(name: str) -> bool:
    """True for a learning rate (`lr`, `learning_rate`, `..._learning_rate`)."""
    name = name.lower().removeprefix("val_")
    return name in ("lr", "learning_rate") or "learning_rate" in name


def metric_kind(name: str) -> str:
    """`LOSS`, `BOUNDED`, `RATE` or `OTHER` for a metric's name.

    Example:

    ```python
    metric_kind("val_loss"), metric_kind("accuracy")   # -> ("loss", "bounded")
    ```
    """
    if is_rate(name):
        return RATE
    direction = best_direction(name)
    if direction == "min":
        return LOSS
    words = name.lower().removeprefix("val_").replace("-", "_").split("_")
    if any(hint in words or (len(hint) > 3 and any(hint in w for w in words))
           for hint in _BOUNDED_HINTS):
        return BOUNDED
    return OTHER


def finite(values: Iterable[np.ndarray]) -> np.ndarray:
    """The finite values of several arrays, in one array."""
    parts = [np.asarray(v, dtype=float) for v in values if len(v)]
    parts = [v[np.isfinite(v)] for v in parts]
    return np.concatenate(parts) if parts else np.empty(0)


class ScaleChoice:
    """The y scale of one panel, kept across renders (never flips silently).

    Args:
        kind: the metric's kind (`metric_kind`).

    `choose(asked, values)` with `asked` None (automatic), False (linear) or
    True (log) returns True for a log axis: the learning rate always (when
    positive); a bounded score never; otherwise log when asked, or, automatic,
    once a loss's positive values span `LOG_RATIO` (and from then on while
    they stay positive).
    """

    def __init__(self, kind: str):
        self.kind = kind
        self.auto_log = False  # the automatic choice went to log (sticky)

    def choose(self, asked: bool | None, values: np.ndarray) -> bool:
        """True for a log y axis."""
        positive = bool(len(values)) and bool(np.all(values > 0))
        if not positive or self.kind == BOUNDED:
            return False
        if self.kind == RATE:
            return True
        if asked is not None:
            return asked
        if self.kind == LOSS and not self.auto_log:
            self.auto_log = float(values.max()) >= LOG_RATIO * float(values.min())
        return self.auto_log


def _span(low: float, high: float, log: bool) -> float:
    """The data span the limits are made for (decades on a log axis); never zero."""
    if log:
        return max(math.log10(high) - math.log10(low), 0.1)
    return high - low if high > low else max(abs(high) * 0.1, 1e-3)


def y_limits(low: float, high: float, log: bool, kind: str = OTHER,
             previous: tuple[float, float] | None = None) -> tuple[float, float]:
    """Y limits for data in [low, high].

    A margin on both sides, more room on a side the data just crossed (a
    falling loss keeps falling: fewer redraws); never below zero for data that
    is not; a bounded score kept inside [0, 1]; on a log axis, at least one
    decade (the learning rate's history reads as steps, not a flat line).
    """
    crossed_low = previous is not None and low < previous[0]
    crossed_high = previous is not None and high > previous[1]
    below = HEADROOM if crossed_low else MARGIN
    above = HEADROOM if crossed_high else MARGIN
    if log:
        a, b = math.log10(low), math.log10(high)
        span = _span(low, high, True)
        a, b = a - span * below, b + span * above
        if b - a < 1.0:
            middle = (a + b) / 2
            a, b = middle - 0.5, middle + 0.5
        return 10**a, 10**b
    span = _span(low, high, False)
    a, b = low - span * below, high + span * above
    if low >= 0 > a:
        a = 0.0  # a loss, an accuracy: never below zero
    if kind == BOUNDED and 0.0 <= low and high <= 1.0:
        pad = 0.03 * (min(b, 1.0) - max(a, 0.0))
        a, b = max(a, 0.0), min(b, 1.0 + pad)
    return a, b


def fits(limits: tuple[float, float] | None, low: float, high: float, log: bool) -> bool:
    """Whether `limits` show [low, high] without wasting most of the height."""
    if limits is None:
        return False
    a, b = limits
    if low < a or high > b:
        return False
    if log:
        a, b = math.log10(a), math.log10(b)
        return _span(low, high, True) >= 0.4 * (b - a) or b - a <= 1.0 + 1e-9
    return _span(low, high, False) >= 0.4 * (b - a)


def _decimals(values: Sequence[float]) -> int:
    """Fewest decimals that write every value apart and exactly enough."""
    for digits in range(0, 8):
        texts = [f"{v:.{digits}f}" for v in values]
        if len(set(texts)) == len(texts) and all(
                abs(float(t) - v) <= 1e-9 * max(1.0, abs(v)) or digits == 7
                for t, v in zip(texts, values)):
            return digits
    return 7


def tick_texts(values: Sequence[float], log: bool = False) -> list[str]:
    """Tick labels as a person writes numbers: `0.01`, `0.5`, `250`, and `3e-4`
    or `2e5` style only when a tick is below 0.001 or from 10 000 on (then
    every tick of a linear axis in that style); on a linear axis as few decimals
    as keep them apart, the same for all (`0.5`, `1.0`, `1.5`); on a log axis
    each its own (`1e-4`, `0.001`, `0.1`, `1`, `10`)."""
    values = [float(v) for v in values]
    shown = [abs(v) for v in values if v != 0]
    if not shown:
        return ["0" for _ in values]
    if log:  # each tick its own: 1e-4, 0.001, 0.01, 0.1, 1, 10
        return [f"{v:.4g}" if 1e-3 <= abs(v) < 1e4 else _sci(v, _digits(v)) for v in values]
    if min(shown) < 1e-3 or max(shown) >= 1e4:
        for digits in range(0, 6):
            texts = [_sci(v, digits) for v in values]
            if len(set(texts)) == len(texts) and all(
                    abs(float(t) - v) <= 1e-6 * abs(v) for t, v in zip(texts, values)):
                return texts
        return texts
    digits = _decimals(values)
    return [f"{v:.{digits}f}" if v != 0 else "0" for v in values]


def _digits(value: float) -> int:
    """Fewest mantissa digits that write `value` exactly enough (at most 3)."""
    for digits in range(0, 3):
        if abs(float(f"{value:.{digits}e}") - value) <= 1e-6 * abs(value):
            return digits
    return 3


def _sci(value: float, digits: int) -> str:
    if value == 0:
        return "0"
    mantissa, exponent = f"{value:.{digits}e}".split("e")
    return f"{mantissa}e{int(exponent)}"


class TickText(Formatter):
    """Matplotlib formatter of `tick_texts` (no offset, no "x10^k" corner text).

    Args:
        log: the ticks of a log axis.
    """

    def __init__(self, log: bool = False):
        self.log = log

    def __call__(self, x: float, pos: Any = None) -> str:
        return tick_texts([x], self.log)[0]

    def format_ticks(self, values: Sequence[float]) -> list[str]:
        """The labels of all the axis's ticks at once (one style, distinct)."""
        return tick_texts(values, self.log)


class LogTicks(Locator):
    """Ticks of a log axis: decades when the limits span more than about one
    and a half (thinned to at most `most`), else 1-2-5 (or 1-2-3-4-5-6-8) steps;
    at least two ticks."""

    def __init__(self, most: int = 5):
        self.most = most

    def __call__(self) -> list[float]:
        low, high = self.axis.get_view_interval()
        return self.tick_values(low, high)

    def tick_values(self, vmin: float, vmax: float) -> list[float]:
        """The ticks for the view `vmin` .. `vmax`."""
        low, high = sorted((float(vmin), float(vmax)))
        if not (low > 0 and math.isfinite(high)):
            return []
        a, b = math.log10(low), math.log10(high)
        if b - a >= 1.5:
            first, last = math.ceil(a - 1e-9), math.floor(b + 1e-9)
            step = max(1, math.ceil((last - first + 1) / self.most))
            return [10.0**k for k in range(first, last + 1, step)]
        for steps in ((1.0, 2.0, 5.0), (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0)):
            ticks = [m * 10.0**k for k in range(math.floor(a) - 1, math.ceil(b) + 1)
                     for m in steps]
            ticks = [t for t in ticks if low * (1 - 1e-9) <= t <= high * (1 + 1e-9)]
            if len(ticks) >= 2:
                while len(ticks) > self.most:
                    ticks = ticks[::2]
                return ticks
        return list(MaxNLocator(nbins=3).tick_values(low, high))


class LogMinorTicks(Locator):
    """Unlabelled minor ticks of a log axis: 2..9 in each decade when the major ticks
    are decades one apart, none otherwise."""

    def __init__(self, major: LogTicks):
        self.major = major

    def __call__(self) -> list[float]:
        low, high = self.axis.get_view_interval()
        major = self.major.tick_values(low, high)
        if len(major) < 2 or not math.isclose(major[1] / major[0], 10.0):
            return []
        ticks = [m * 10.0**k for k in range(math.floor(math.log10(low)),
                                            math.ceil(math.log10(high)) + 1)
                 for m in range(2, 10)]
        return [t for t in ticks if low <= t <= high]


def set_y_scale(ax: Any, log: bool, nbins: int = 5) -> None:
    """Put `ax`'s y axis on a log or linear scale with readable ticks."""
    if log:
        ax.set_yscale("log", nonpositive="mask")
        major = LogTicks()
        ax.yaxis.set_major_locator(major)
        ax.yaxis.set_minor_locator(LogMinorTicks(major))
    else:
        ax.set_yscale("linear")
        ax.yaxis.set_major_locator(MaxNLocator(nbins=nbins, steps=[1, 2, 2.5, 5, 10]))
        ax.yaxis.set_minor_locator(NullLocator())
    ax.yaxis.set_major_formatter(TickText(log))
    ax.yaxis.set_minor_formatter(NullFormatter())


def style_axes(ax: Any, title: str, xlabel: str = "epoch", fontsize: float = 8) -> None:
    """The common look of a panel: its metric's name at the top left, a light grid,
    integer epochs on x with one x label under the panel, readable y ticks."""
    ax.set_title(title, loc="left", fontsize=fontsize + 1, y=1.0, pad=3)
    ax.tick_params(labelsize=fontsize, pad=2)
    ax.grid(alpha=0.25, linewidth=0.6)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=True, min_n_ticks=2))
    ax.xaxis.set_major_formatter(TickText())
    ax.set_xlabel(xlabel, fontsize=fontsize, labelpad=1)
    set_y_scale(ax, False)


PANEL_MARGINS = (0.62, 0.12, 0.26, 0.46)
"""Inches around each panel's axes: left (y tick labels), right, top (title),
bottom (x tick labels and the x label)."""


def panel_grid(figure: Any, n: int, max_columns: int = 3, width: float = 9.0,
               panel_height: float = 2.65) -> list[Any]:
    """Size `figure` for `n` panels, `max_columns` a row, and add their axes: each
    panel's cell keeps the same room for its tick labels, title and x label, so
    that nothing overlaps a neighbour (cheaper than a layout engine at every draw).
    """
    columns = max(1, min(n, max_columns))
    rows = max(1, math.ceil(n / columns))
    height = panel_height * rows
    figure.set_size_inches(width, height)
    left, right, top, bottom = PANEL_MARGINS
    cell_w = width / columns
    out = []
    for i in range(n):
        row, column = divmod(i, columns)
        out.append(figure.add_axes([(column * cell_w + left) / width,
                                    1 - ((row + 1) * panel_height - bottom) / height,
                                    (cell_w - left - right) / width,
                                    (panel_height - top - bottom) / height]))
    return out


def legend_handles(lines: Iterable[Any]) -> list[Any]:
    """The lines a legend lists: those drawn (visible, with data, a label that does
    not start with `_`), in order."""
    return [line for line in lines
            if line.get_visible() and len(line.get_xdata())
            and not str(line.get_label()).startswith("_")]


_CORNERS = ("upper right", "upper left", "lower left", "lower right", "center right",
            "center left", "upper center", "lower center")
_BOXES = {  # where a legend of size (w, h), in axes fractions, sits at each location
    "upper right": lambda w, h: (1 - w, 1 - h), "upper left": lambda w, h: (0.0, 1 - h),
    "lower left": lambda w, h: (0.0, 0.0), "lower right": lambda w, h: (1 - w, 0.0),
    "center right": lambda w, h: (1 - w, 0.5 - h / 2),
    "center left": lambda w, h: (0.0, 0.5 - h / 2),
    "upper center": lambda w, h: (0.5 - w / 2, 1 - h),
    "lower center": lambda w, h: (0.5 - w / 2, 0.0),
}


def best_location(ax: Any, legend: Any, lines: Iterable[Any]) -> str:
    """The location where `legend` covers the fewest points of `lines` (matplotlib's
    "best", computed once here instead of at every draw of the legend)."""
    renderer = ax.figure.canvas.get_renderer()
    box = legend.get_window_extent(renderer)
    frame = ax.get_window_extent(renderer)
    if frame.width <= 0 or frame.height <= 0:
        return _CORNERS[0]
    w = (box.width + 8) / frame.width
    h = (box.height + 8) / frame.height
    points = [ax.transData.transform(np.column_stack([line.get_xdata(), line.get_ydata()]))
              for line in lines if len(line.get_xdata())]
    if not points:
        return _CORNERS[0]
    xy = np.concatenate(points)
    xy = (xy - [frame.x0, frame.y0]) / [frame.width, frame.height]
    xy = xy[np.all(np.isfinite(xy), axis=1)]
    # the newest points (on the right) count double: the curve goes on there
    def covered(loc: str) -> float:
        x0, y0 = _BOXES[loc](w, h)
        inside = ((xy[:, 0] >= x0) & (xy[:, 0] <= x0 + w) & (xy[:, 1] >= y0)
                  & (xy[:, 1] <= y0 + h))
        return float(inside.sum() + (inside & (xy[:, 0] > 0.8)).sum())
    return min(_CORNERS, key=covered)


def draw_legend(ax: Any, lines: Iterable[Any], fontsize: float = 7,
                animated: bool = False) -> Any:
    """A legend of exactly the `lines` drawn (None, and any old one removed, when
    none), where it hides the fewest of their points (`best_location`, computed
    here, at each full draw); `animated`: drawn by the caller after the lines
    (blitting), so no line is ever drawn across it."""
    lines = list(lines)
    handles = legend_handles(lines)
    old = ax.get_legend()
    if old is not None:
        old.remove()
    if not handles:
        return None
    legend = ax.legend(handles=handles, labels=[h.get_label() for h in handles],
                       loc="best", fontsize=fontsize, frameon=True,
                       framealpha=0.85, borderpad=0.3, labelspacing=0.25, handlelength=1.6,
                       handletextpad=0.4, borderaxespad=0.3)
    legend.get_frame().set_linewidth(0.5)
    legend.set_loc(best_location(ax, legend, handles))
    legend.set_animated(animated)
    return legend


def rate_text(value: float) -> str:
    """A learning rate as a person writes it: `0.001`, `3e-4`, `0.05`."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    text = f"{value:.3g}"
    if "e" in text:
        mantissa, exponent = text.split("e")
        text = f"{mantissa}e{int(exponent)}"
    elif abs(value) < 1e-3:
        text = _sci(float(f"{value:.3g}"), 2).replace(".00e", "e")
    if "e" in text:
        mantissa, exponent = text.split("e")
        mantissa = mantissa.rstrip("0").rstrip(".") if "." in mantissa else mantissa
        text = f"{mantissa}e{exponent}"
    return text


__all__ = ["BOUNDED", "LOG_RATIO", "LOSS", "OTHER", "PANEL_MARGINS", "RATE", "LogMinorTicks",
           "LogTicks", "ScaleChoice", "TickText", "best_location", "draw_legend", "finite", "fits", "is_rate",
           "legend_handles", "metric_kind", "panel_grid", "rate_text",
           "round_up", "set_y_scale", "style_axes", "tick_texts", "x_limits", "y_limits"]
