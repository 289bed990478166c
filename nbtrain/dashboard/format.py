"""Pure formatting for the dashboard: strings and HTML, no widgets.

Everything the dashboard shows is a string made here, so the live widgets,
the static snapshot saved in the notebook and the plain-text fallback say the
same thing, and tests can check the text without a browser.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence

from nbtrain.dashboard.tracker import Metric
from nbtrain.run.state import FAILED, FINISHED, PAUSED, PAUSING, RUNNING, STOPPED, STOPPING
from nbtrain.text import format_duration

TEXT_FALLBACK = "nbtrain dashboard"
"""The `text/plain` of the live view: the same on every run (nbval compares it)."""

STATE_COLORS = {
    RUNNING: "#1565c0",
    PAUSING: "#f9a825",
    PAUSED: "#f9a825",
    STOPPING: "#ef6c00",
    STOPPED: "#616161",
    FINISHED: "#2e7d32",
    FAILED: "#c62828",
}
"""The header's colour for each run state."""

BAR_STYLES = {FINISHED: "success", FAILED: "danger", STOPPED: "warning",
              STOPPING: "warning", PAUSING: "info", PAUSED: "info"}
"""The progress bars' `bar_style` for each state (running: the default)."""

_CELL = "padding:2px 10px;text-align:right;font-variant-numeric:tabular-nums"
_HEAD = "padding:2px 10px;text-align:right;border-bottom:1px solid #ccc"


def format_value(value: float | None) -> str:
    """A metric value with 4 significant digits; `–` for none.

    Example:

    ```python
    format_value(0.123456)  # -> "0.1235"
    format_value(None)      # -> "–"
    ```
    """
    if value is None:
        return "–"
    if not math.isfinite(value):
        return str(value)
    return f"{value:.4g}"


def state_html(state: str) -> str:
    """The header's state badge: the state's name on its colour."""
    color = STATE_COLORS.get(state, "#616161")
    return (f'<span style="background:{color};color:white;padding:2px 10px;border-radius:4px;'
            f'font-weight:bold">{html.escape(state)}</span>')


def time_text(elapsed: float, eta: float | None) -> str:
    """`elapsed 0:42 · ETA 1:23` (no ETA once nothing remains)."""
    text = f"elapsed {format_duration(elapsed)}"
    if eta is not None:
        text += f" · ETA {format_duration(eta)}"
    return text


def epoch_text(epoch: int, epochs: int | None) -> str:
    """`epoch 3 / 20` for the 1-based epoch in progress."""
    return f"epoch {epoch} / {epochs if epochs else '?'}"


def batch_text(done: int, steps: int | None, rate: float | None) -> str:
    """`batch 12/50 · 812 steps/s`."""
    text = f"batch {done}/{steps if steps else '?'}"
    if rate:
        text += f" · {rate:.3g} steps/s" if rate < 100 else f" · {rate:.0f} steps/s"
    return text


def _best(metric: Metric) -> str:
    if metric.best is None:
        return "–"
    where = f"epoch {metric.best_epoch}" + (", val" if metric.best_is_val else "")
    return f"{format_value(metric.best)} ({where})"


TABLE_COLUMNS = ("metric", "last", "epoch avg", "val", "best")


def table_rows(metrics: Iterable[Metric]) -> list[tuple[str, str, str, str, str]]:
    """One row of strings per metric, in `TABLE_COLUMNS` order."""
    return [(m.name, format_value(m.last), format_value(m.epoch_avg), format_value(m.val),
             _best(m)) for m in metrics]


def table_html(rows: Sequence[Sequence[str]]) -> str:
    """The metric table as HTML (also the snapshot's `text/html`)."""
    if not rows:
        return ""
    head = "".join(f'<th style="{_HEAD}{";text-align:left" if i == 0 else ""}">{c}</th>'
                   for i, c in enumerate(TABLE_COLUMNS))
    body = "".join(
        "<tr>" + "".join(
            f'<td style="{_CELL}{";text-align:left;font-weight:bold" if i == 0 else ""}">'
            f"{html.escape(cell)}</td>" for i, cell in enumerate(row)) + "</tr>"
        for row in rows)
    return (f'<table class="nbtrain-table" style="border-collapse:collapse">'
            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")


def table_text(rows: Sequence[Sequence[str]]) -> str:
    """The metric table as aligned plain text."""
    if not rows:
        return ""
    table = [TABLE_COLUMNS, *rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(TABLE_COLUMNS))]
    return "\n".join("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(r, widths, strict=True))).rstrip()
                     for r in table)


def messages_html(messages: Sequence[tuple[str, str]]) -> str:
    """Warnings and errors, newest last; `messages` holds `(level, text)` pairs, an
    `"error"`'s text may span lines (a traceback)."""
    parts = []
    for level, text in messages:
        if level == "error":
            parts.append('<pre style="color:#c62828;white-space:pre-wrap;margin:4px 0">'
                         f"{html.escape(text)}</pre>")
        else:
            parts.append(f'<div style="color:#8a6d00">⚠ {html.escape(text)}</div>')
    return "".join(parts)


def messages_text(messages: Sequence[tuple[str, str]]) -> str:
    """Warnings and errors as plain text."""
    return "\n".join(text if level == "error" else f"warning: {text}" for level, text in messages)


def snapshot_class(key: str) -> str:
    """The CSS class that marks the snapshot outputs of the dashboard `key`."""
    return f"nbtrain-of-{key}"


def snapshot_css(key: str) -> str:
    """A `<style>` the live view carries: wherever it renders (a kernel is there,
    or the widget state was saved), it hides its own static snapshot outputs,
    which are for where widgets do not render.

    The table snapshot is found by its class (any front-end); the plot
    snapshot, a plain `image/png` output, as the output after it in the
    output area (JupyterLab's and Notebook 7's `jp-OutputArea-child`).
    """
    of = snapshot_class(key)
    child = f".jp-OutputArea-child:has(.{of})"
    return (f"<style>.{of}{{display:none!important}}"
            f"{child},{child}+.jp-OutputArea-child{{display:none!important}}</style>")


def snapshot_html(state: str, progress: str, rows: Sequence[Sequence[str]],
                  messages: Sequence[tuple[str, str]], key: str | None = None) -> str:
    """The static snapshot's `text/html`: state, epoch, metric table, messages
    (`key`: the dashboard's, see `snapshot_css`)."""
    header = f'<div style="margin:4px 0">{state_html(state)} {html.escape(progress)}</div>'
    classes = "nbtrain-snapshot" + (f" {snapshot_class(key)}" if key else "")
    return (f'<div class="{classes}">{header}{table_html(rows)}'
            f"{messages_html(messages)}</div>")


def snapshot_text(state: str, progress: str, rows: Sequence[Sequence[str]],
                  messages: Sequence[tuple[str, str]]) -> str:
    """The static snapshot's `text/plain`."""
    parts = [f"{state} - {progress}", table_text(rows), messages_text(messages)]
    return "\n".join(p for p in parts if p)
