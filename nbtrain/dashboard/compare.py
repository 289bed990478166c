"""`nbtrain.compare`: runs side by side, each metric's curves overlaid.

One figure, one panel per metric (the loss first), every run in its own
colour, its training values as a solid line and its validation values
dashed, labelled by the run's name.  The axes read as the live plot's do
(`nbtrain.dashboard.axes`: scale, limits, ticks, one x label per panel, a
legend of exactly the lines drawn).  The result displays as a PNG with a
plain-text summary (the final values of each run), which is what a saved
notebook keeps: the comparison is static once drawn.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from typing import Any

import numpy as np

COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2",
          "#7f7f7f", "#bcbd22", "#17becf")


def _history_of(item: Any) -> Any:
    """A `keras.callbacks.History` from a Run or a History."""
    history = getattr(item, "history", None)
    if isinstance(history, dict):  # a History
        return item
    if history is not None and isinstance(getattr(history, "history", None), dict):  # a Run
        return history
    raise TypeError(f"nbtrain.compare takes Runs or keras.callbacks.History objects, got "
                    f"{type(item).__name__}.")


class RunCurves:
    """The epoch-level curves of one run, as `compare` draws them.

    Attributes:
        name: the label.
        epochs: 1-based epoch numbers.
        values: metric name (with `val_` for validation) to one value per epoch.
    """

    def __init__(self, name: str, history: Any):
        self.name = name
        epochs = list(getattr(history, "epoch", None) or [])
        values = {k: list(v) for k, v in history.history.items()}
        if not epochs and values:
            epochs = list(range(max(len(v) for v in values.values())))
        self.epochs = np.array([e + 1 for e in epochs], dtype=float)
        self.values = {k: np.array(v, dtype=float) for k, v in values.items()
                       if len(v) == len(epochs) and _numeric(v)}

    def metrics(self) -> list[str]:
        """Its metric names, without the `val_` prefix, in order of appearance."""
        out: list[str] = []
        for key in self.values:
            name = key[4:] if key.startswith("val_") else key
            if name not in out:
                out.append(name)
        return out


def _numeric(values: Sequence[Any]) -> bool:
    try:
        np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        return False
    return True


class Comparison:
    """Runs compared: a figure and its static snapshot (what `nbtrain.compare` returns).

    Displayed in a notebook as a PNG (kept when the notebook is saved), with a
    plain-text summary of each run's last values.

    Attributes:
        runs: the `RunCurves` drawn, in order.
        metrics: the metrics drawn, one panel each.
        log_y: the y scale asked for: None automatic (a loss spanning decades on
            a log axis), False linear, True log (for the losses and any positive
            metric; a bounded score such as the accuracy stays linear); the same
            rules as the live plot (`nbtrain.dashboard.axes`).
        smoothing: TensorBoard's smoothing weight in [0, 1) (0: none).
        figure: the matplotlib `Figure` (Agg; not shown by pyplot).
        png: the figure as PNG bytes.
    """

    def __init__(self, runs: list[RunCurves], metrics: list[str], log_y: bool | None = None,
                 smoothing: float = 0.0, width: float = 9.0, panel_height: float = 2.65,
                 dpi: int = 100):
        self.runs = runs
        self.metrics = metrics
        self.log_y = log_y
        self.smoothing = smoothing
        self.figure: Any = None
        self.png = self._draw(width, panel_height, dpi)

    def _draw(self, width: float, panel_height: float, dpi: int) -> bytes:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        from nbtrain.dashboard import axes as rules

        figure = self.figure = Figure(dpi=dpi)
        FigureCanvasAgg(figure)
        grid = rules.panel_grid(figure, len(self.metrics), 3, width, panel_height)
        last = max((float(run.epochs[-1]) for run in self.runs if len(run.epochs)), default=1.0)
        for ax, metric in zip(grid, self.metrics):
            kind = rules.metric_kind(metric)
            rules.style_axes(ax, metric)
            many = max((len(run.epochs) for run in self.runs), default=0) > 60
            for j, run in enumerate(self.runs):
                color = COLORS[j % len(COLORS)]
                train, val = run.values.get(metric), run.values.get(f"val_{metric}")
                if train is not None:
                    ax.plot(run.epochs, self._smoothed(train), color=color, linewidth=1.5,
                            marker="none" if many else "o", markersize=3, label=run.name)
                if val is not None:
                    ax.plot(run.epochs, self._smoothed(val), color=color, linewidth=1.2,
                            linestyle="--", label=f"{run.name} (val)")
                if self.smoothing:  # the raw values, faint, as TensorBoard shows them
                    for raw, style in ((train, "-"), (val, "--")):
                        if raw is not None:
                            ax.plot(run.epochs, raw, color=color, alpha=0.25, linewidth=1.0,
                                    linestyle=style, label="_raw")
            values = rules.finite(line.get_ydata() for line in ax.get_lines())
            log = rules.ScaleChoice(kind).choose(self.log_y, values)
            rules.set_y_scale(ax, log)
            if log:
                ax.set_title("log scale", loc="right", fontsize=7, color="#7f7f7f", y=1.0, pad=3)
                values = values[values > 0]
            if len(values):
                ax.set_ylim(*rules.y_limits(float(values.min()), float(values.max()), log, kind))
            ax.set_xlim(*rules.x_limits(0.0, last))
            rules.draw_legend(ax, ax.get_lines())
        out = io.BytesIO()
        figure.savefig(out, format="png", dpi=dpi)
        return out.getvalue()

    def _smoothed(self, values: np.ndarray) -> np.ndarray:
        if not self.smoothing:
            return values
        from nbtrain.dashboard.plot import smooth

        # TensorBoard's weight w is an exponential average with alpha = 1 - w
        return smooth(values, span=2.0 / (1.0 - self.smoothing) - 1.0)

    def summary(self) -> str:
        """The last value of each metric for each run, as text."""
        lines = []
        for metric in self.metrics:
            parts = []
            for run in self.runs:
                train, val = run.values.get(metric), run.values.get(f"val_{metric}")
                text = f"{run.name} {train[-1]:.4g}" if train is not None and len(train) else ""
                if val is not None and len(val):
                    text += f"{' ' if text else run.name + ' '}(val {val[-1]:.4g})"
                if text:
                    parts.append(text)
            lines.append(f"{metric}: " + ", ".join(parts))
        return "\n".join(lines)

    def __repr__(self) -> str:
        names = ", ".join(run.name for run in self.runs)
        return f"<nbtrain comparison of {names}>\n{self.summary()}"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict:
        return {"image/png": base64.b64encode(self.png).decode("ascii"),
                "text/plain": repr(self)}


def history_of(item: Any) -> Any:
    """The `keras.callbacks.History` of a Run (or a History itself).

    Raises:
        TypeError: neither a Run nor a History.
    """
    return _history_of(item)


def overlay_of(history: Any) -> dict[str, Any]:
    """An earlier run's curves to draw faintly behind a live plot (a
    `keras.callbacks.History`'s epoch-level values): for each metric, its training
    and validation `(x, y)` at each epoch's end, as the live run's own are placed
    (`MetricTracker.overlay`)."""
    epochs = np.array(list(getattr(history, "epoch", None) or []), dtype=float)
    overlay: dict[str, Any] = {}
    for key, values in (getattr(history, "history", None) or {}).items():
        try:
            values = np.array(values, dtype=float)
        except (TypeError, ValueError):
            continue
        if values.ndim != 1 or len(values) != len(epochs):
            continue
        is_val = key.startswith("val_")
        name = key[4:] if is_val else key
        empty = (np.empty(0), np.empty(0))
        train, val = overlay.get(name, (empty, empty))
        if is_val:
            val = (epochs + 1.0, values)
        else:
            train = (epochs + 1.0, values)
        overlay[name] = (train, val)
    return overlay


def overlay(dashboard: Any, earlier: Any) -> None:
    """Draw `earlier`'s curves (a Run or a History) faintly behind a dashboard's
    live plot: its epoch-level values only, static, so the plot's cost per render
    grows by two short lines per panel and nothing per batch
    (`nbtrain.fit(..., compare_with=earlier)`).

    Args:
        dashboard: a `Dashboard` (anything else, e.g. a text status, is left alone).
        earlier: an `nbtrain.Run` or a `keras.callbacks.History`.
    """
    presenter = getattr(dashboard, "presenter", None)
    if presenter is None:
        return
    history = _history_of(earlier)
    with presenter.lock:
        presenter.tracker.overlay = overlay_of(history)
        presenter.changed()


def compare(*runs: Any, names: Sequence[str] | None = None,
            metrics: Sequence[str] | None = None, log_y: bool | None = None,
            smoothing: float = 0.0) -> Comparison:
    """Compare runs in one figure: each metric's curves overlaid, train and validation.

    Args:
        *runs: `nbtrain.Run`s or `keras.callbacks.History` objects (at least one),
            or a single dict mapping names to them.
        names: a label per run (default: the run's `name` attribute if it has
            one, else `run 1`, `run 2`, ...).
        metrics: the metrics to draw, without `val_` (default: every metric of
            any run, the loss first).
        log_y: None (default) chooses per panel as the live plot does (a loss
            spanning two decades or more on a log axis); True log y axes (for
            panels whose values are all positive, never a bounded score such as
            the accuracy); False linear.
        smoothing: TensorBoard's smoothing weight, in [0, 1): the curves are an
            exponential moving average (debiased), the raw values drawn faintly.

    Returns:
        A `Comparison`; at the end of a cell it shows the figure, which a saved
        notebook keeps as a static PNG.

    Raises:
        TypeError: something that is neither a Run nor a History.
        ValueError: no runs, a wrong number of names, an unknown metric, or a
            smoothing outside [0, 1).

    Example:

    ```python
    fixed = nbtrain.fit(model_a, x, y, epochs=5, display=False)
    steered = nbtrain.fit(model_b, x, y, epochs=5, display=False)
    nbtrain.compare(fixed, steered, names=["fixed lr", "steered"])
    ```
    """
    if len(runs) == 1 and isinstance(runs[0], dict):
        names = list(runs[0]) if names is None else names
        runs = tuple(runs[0].values())
    if not runs:
        raise ValueError("nbtrain.compare needs at least one Run or History.")
    if not 0.0 <= float(smoothing) < 1.0:
        raise ValueError(f"smoothing must be in [0, 1) (TensorBoard's weight), got {smoothing!r}.")
    histories = [_history_of(run) for run in runs]
    if names is None:
        names = [str(getattr(run, "name", None) or f"run {i + 1}") for i, run in enumerate(runs)]
    names = [str(name) for name in names]
    if len(names) != len(runs):
        raise ValueError(f"{len(runs)} runs but {len(names)} names.")
    curves = [RunCurves(name, history) for name, history in zip(names, histories)]
    available: list[str] = []
    for run in curves:
        available += [m for m in run.metrics() if m not in available]
    available.sort(key=lambda m: m != "loss")
    if metrics is None:
        chosen = available
    else:
        chosen = list(metrics)
        unknown = [m for m in chosen if m not in available]
        if unknown:
            raise ValueError(f"No run has the metric(s) {unknown}; they have {available}.")
    if not chosen:
        raise ValueError("The runs have no recorded epochs to compare yet.")
    return Comparison(curves, chosen, log_y=log_y, smoothing=float(smoothing))


__all__ = ["Comparison", "RunCurves", "compare", "history_of", "overlay", "overlay_of"]
