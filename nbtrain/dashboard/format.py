"""Pure formatting for the dashboard: strings and HTML, no widgets.

Everything the dashboard shows is a string made here, so the live widgets,
the static snapshot saved in the notebook and the plain-text fallback say the
same thing, and tests can check the text without a browser.
"""

from __future__ import annotations

import html
import math
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from nbtrain.dashboard.tracker import best_direction
from nbtrain.run.state import FAILED, FINISHED, PAUSED, PAUSING, RUNNING, STOPPED, STOPPING
from nbtrain.text import format_duration, format_number, number_format

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
"""The progress bars' `bar_style` for each state (running: the default).  The view
paints the bars in the badge's colour over it (`style.bar_color` from `STATE_COLORS`,
`DashboardView.set_state`): the Jupyter theme's warning and info colours are orange
and teal where the badge is grey (stopped) and amber (paused)."""

LIVE_ROWS = 10
"""Completed epochs the live table shows (the latest)."""

SNAPSHOT_ROWS = 2 * LIVE_ROWS
"""The saved snapshot shows every epoch up to this many; a longer run's shows the
latest `LIVE_ROWS`, as the live table does, and says how many earlier ones the History
has.  Never a scrolling box: an untrusted notebook's sanitiser (JupyterLab's, GitHub's)
drops the sticky header such a box needs, and the header scrolled away."""

ROW_PX = 22
"""The height of a table row, in pixels (the live table reserves its room with it)."""

_CELL = (f"padding:2px 10px;line-height:{ROW_PX - 4}px;text-align:right;white-space:nowrap;"
         "font-variant-numeric:tabular-nums")
_HEAD = f"padding:2px 10px;line-height:{ROW_PX - 5}px;text-align:right;border-bottom:1px solid #ccc"
_RUNNING = "color:#757575;font-style:italic"
_STRIPE = "background:rgba(128,128,128,0.08)"


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
        text += f" · {format_number(rate, '.3g')} steps/s"  # a measure: 3 digits
    return text


@dataclass
class EpochTable:
    """The metric table: a row per epoch (epoch, time, each metric and its
    validation value), the completed epochs oldest first, then, while one is
    under way, the epoch in progress with its averages so far.

    Every value of a metric (its training and validation columns, every row)
    has the same decimals (`nbtrain.text.number_format`).

    Attributes:
        columns: `("epoch", "time", "loss", "val_loss", ...)`.
        rows: one tuple of strings per row, in `columns` order.
        running: the last row is the epoch in progress (not complete).
        best: `(row, column)` of each metric's best epoch value (validation if
            there is one), for completed epochs, when there are two or more.
        earlier: completed epochs before the first row, not in `rows`.
    """

    columns: tuple[str, ...] = ()
    rows: list[tuple[str, ...]] = field(default_factory=list)
    running: bool = False
    best: set[tuple[int, int]] = field(default_factory=set)
    earlier: int = 0

    def __bool__(self) -> bool:
        return bool(self.rows)


def _metric_keys(logs: Sequence[dict[str, Any]]) -> list[str]:
    """The table's metric columns: the loss first, then in the order they appear,
    each training metric followed by its validation one; no learning rate."""
    seen: dict[str, None] = {}
    for values in logs:
        for key in values:
            seen.setdefault(key, None)
    names: dict[str, None] = {}
    for key in seen:
        name = key[4:] if key.startswith("val_") else key
        if best_direction(name) is not None:
            names.setdefault(name, None)
    ordered = sorted(names, key=lambda name: name != "loss")
    keys = []
    for name in ordered:
        keys += [k for k in (name, f"val_{name}") if k in seen]
    return keys


def _epoch_time(seconds: float | None) -> str:
    """An epoch's time: `0.84 s` under 10 s, else `m:ss` / `h:mm:ss`."""
    if seconds is None or seconds < 0:
        return "–"
    if seconds < 10:
        return f"{seconds:.2f} s" if seconds < 1 else f"{seconds:.1f} s"
    return format_duration(seconds)


@dataclass
class _Epochs:
    """What the completed epochs give the table, computed once per recorded epoch."""

    signature: tuple
    done: list[tuple[int, dict[str, float]]]
    keys: dict[str, None]  # their metric keys, in order
    sizes: dict[str, tuple[float, float]]  # metric -> its smallest and largest |value|
    best: dict[str, int]  # key of the column holding a metric's best -> its index in `done`


_EPOCHS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # tracker -> _Epochs


def _epochs(tracker: Any) -> _Epochs:
    logs = tracker.epoch_logs
    last = max(logs) if logs else None
    signature = (id(logs), len(logs), last, tuple(logs[last].items()) if logs else ())
    cached = _EPOCHS.get(tracker)
    if cached is not None and cached.signature == signature:
        return cached
    done = sorted(logs.items())
    keys = dict.fromkeys(_metric_keys([values for _, values in done]))
    sizes: dict[str, tuple[float, float]] = {}
    for _, values in done:
        for key, value in values.items():
            if key in keys and value and math.isfinite(value):
                name, size = key.removeprefix("val_"), abs(value)
                small, large = sizes.get(name, (size, size))
                sizes[name] = (min(small, size), max(large, size))
    best = {}
    if len(done) >= 2:
        for name in dict.fromkeys(k.removeprefix("val_") for k in keys):
            key = f"val_{name}" if f"val_{name}" in keys else name
            scored = [(v[key], i) for i, (_, v) in enumerate(done)
                      if key in v and math.isfinite(v[key])]
            if scored:
                best[key] = (min if best_direction(name) == "min" else max)(scored)[1]
    result = _Epochs(signature, done, keys, sizes, best)
    _EPOCHS[tracker] = result
    return result


def epoch_table(tracker: Any, limit: int | None = None) -> EpochTable:
    """The table of a `MetricTracker`: its recorded epochs (`epoch_logs`, their
    `epoch_times`; the latest `limit` of them, None: all) and the epoch in
    progress (its metrics' `epoch_avg`, the running averages), if a batch of
    it is done and it is not recorded yet.  The number formats and the best
    values are those of all epochs (worked out once per recorded epoch: a
    long run's table costs the rows it shows).

    Example:

    ```python
    table = epoch_table(tracker)
    table.columns   # ('epoch', 'time', 'loss', 'val_loss')
    table.rows      # [('1', '1.2 s', '0.4123', '0.3987'), ('2 so far', '0.40 s', '0.3012', '')]
    ```
    """
    epochs = _epochs(tracker)
    done = epochs.done
    running: dict[str, float] = {}
    if tracker.done > 0 and tracker.epoch not in tracker.epoch_logs:
        running = {m.name: m.epoch_avg for m in tracker.metrics.values()
                   if m.last is not None and m.epoch_avg is not None}
    keys = _metric_keys([epochs.keys, running])
    if not keys:
        return EpochTable()
    specs = {}
    for key in keys:
        name = key.removeprefix("val_")
        specs[key] = number_format([*epochs.sizes.get(name, ()), running.get(name)])
    earlier = max(len(done) - limit, 0) if limit is not None else 0
    rows = [(str(epoch + 1), _epoch_time(tracker.epoch_times.get(epoch)),
             *(format_number(values[k], specs[k]) if k in values else "" for k in keys))
            for epoch, values in done[earlier:]]
    table = EpochTable(("epoch", "time", *keys), rows, earlier=earlier)
    for key, index in epochs.best.items():
        if index >= earlier and key in keys:
            table.best.add((index - earlier, keys.index(key) + 2))
    if running:
        clock, began = tracker.clock, tracker.epoch_began
        seconds = clock() - began if clock is not None and began is not None else None
        rows.append((f"{tracker.epoch + 1} so far", _epoch_time(seconds),
                     *(format_number(running[k], specs[k]) if k in running else ""
                       for k in keys)))
        table.running = True
    return table


def _shown(table: EpochTable, limit: int | None) -> tuple[range, int]:
    """The rows shown (the running one and the latest `limit` completed) and how
    many earlier ones are not."""
    completed = len(table.rows) - table.running
    extra = max(completed - limit, 0) if limit is not None else 0
    return range(extra, len(table.rows)), table.earlier + extra


def table_html(table: EpochTable, limit: int | None = LIVE_ROWS,
               reserve: int | None = None) -> str:
    """The metric table as HTML (`table.nbtrain-table`; also the snapshot's).

    Args:
        table: from `epoch_table`.
        limit: the completed epochs shown (the latest; a line says how many are
            not); None: all.
        reserve: rows to keep room for from the start (the epochs the run will
            have), so the dashboard does not grow while it trains.
    """
    shown, hidden = _shown(table, limit)
    room = ""
    if reserve:
        rows = min(reserve, (limit if limit is not None else LIVE_ROWS) + 1)
        note = 1 if limit is not None and reserve > limit + 1 else 0
        room = f"min-height:{(rows + note + 1) * ROW_PX + 2}px;"
    if not table:
        return f'<div class="nbtrain-table-box" style="{room}"></div>' if room else ""
    head = "".join(f'<th style="{_HEAD}{";text-align:left" if i == 0 else ""}">'
                   f"{html.escape(c)}</th>" for i, c in enumerate(table.columns))
    body = []
    if hidden:
        body.append(f'<tr class="nbtrain-table-note"><td colspan="{len(table.columns)}" '
                    f'style="{_CELL};text-align:left;{_RUNNING}">⋮ {hidden} earlier epoch'
                    f'{"s" if hidden > 1 else ""} (the History has them all)</td></tr>')
    last = len(table.rows) - 1
    for r in shown:
        running = table.running and r == last
        cells = []
        for c, cell in enumerate(table.rows[r]):
            style = _CELL + (";text-align:left" if c == 0 else "")
            attrs = ""
            if (r, c) in table.best:
                style += ";font-weight:bold"
                attrs = ' title="best"'
            cells.append(f'<td style="{style}"{attrs}>{html.escape(cell)}</td>')
        stripe = _STRIPE if (table.earlier + r) % 2 else ""  # every other epoch shaded: a row reads across
        row = (f' class="nbtrain-running" style="{_RUNNING};{stripe}" title="the epoch in '
               'progress: averages of its batches so far"') if running else (
            f' style="{stripe}"' if stripe else "")
        body.append(f"<tr{row}>{''.join(cells)}</tr>")
    return (f'<div class="nbtrain-table-box" style="{room}">'
            f'<table class="nbtrain-table" style="border-collapse:collapse">'
            f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>")


def table_text(table: EpochTable, limit: int | None = LIVE_ROWS) -> str:
    """The metric table as aligned plain text (the latest `limit` completed epochs
    and the one in progress; None: all)."""
    if not table:
        return ""
    shown, hidden = _shown(table, limit)
    lines = [table.columns, *(table.rows[r] for r in shown)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(table.columns))]
    text = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                      for i, (c, w) in enumerate(zip(line, widths, strict=True))).rstrip()
            for line in lines]
    if hidden:
        text.insert(1, f"... {hidden} earlier epoch{'s' if hidden > 1 else ''}")
    return "\n".join(text)


def messages_html(messages: Sequence[tuple[str, str]]) -> str:
    """Warnings and errors, newest last; `messages` holds `(level, text)` pairs, an
    `"error"`'s text may span lines (a traceback)."""
    parts = []
    for level, text in messages:
        if level == "failure":  # a failed run's report: its HTML made by dashboard.failure
            parts.append(getattr(text, "html", "") or f"<pre>{html.escape(text)}</pre>")
        elif level == "error":
            parts.append('<pre style="color:#c62828;white-space:pre-wrap;margin:4px 0">'
                         f"{html.escape(text)}</pre>")
        else:
            parts.append(f'<div style="color:#8a6d00">⚠ {html.escape(text)}</div>')
    return "".join(parts)


def messages_text(messages: Sequence[tuple[str, str]]) -> str:
    """Warnings and errors as plain text."""
    return "\n".join(text if level in ("error", "failure") else f"warning: {text}"
                     for level, text in messages)


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


def snapshot_table_html(table: EpochTable) -> str:
    """The metric table of an ended run's static view: every epoch up to
    `SNAPSHOT_ROWS`, else the latest `LIVE_ROWS` and how many earlier ones there are."""
    completed = len(table.rows) - table.running
    return table_html(table, limit=None if completed <= SNAPSHOT_ROWS else LIVE_ROWS)


def snapshot_html(state: str, progress: str, table: EpochTable,
                  messages: Sequence[tuple[str, str]], key: str | None = None) -> str:
    """The static snapshot's `text/html`: state, epoch, metric table
    (`snapshot_table_html`), messages (`key`: the dashboard's, see `snapshot_css`)."""
    header = f'<div style="margin:4px 0">{state_html(state)} {html.escape(progress)}</div>'
    classes = "nbtrain-snapshot" + (f" {snapshot_class(key)}" if key else "")
    return (f'<div class="{classes}">{header}{snapshot_table_html(table)}'
            f"{messages_html(messages)}</div>")


def snapshot_text(state: str, progress: str, table: EpochTable,
                  messages: Sequence[tuple[str, str]]) -> str:
    """The static snapshot's `text/plain` (the table's latest `LIVE_ROWS` epochs)."""
    parts = [f"{state} - {progress}", table_text(table), messages_text(messages)]
    return "\n".join(p for p in parts if p)
