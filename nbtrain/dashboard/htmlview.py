"""`HtmlView`: the dashboard as one HTML output, updated in place (`display="html"`).

Where widgets do not render, or do not refresh from a training thread (Colab,
Kaggle; nbconvert, GitHub's viewer for the saved notebook), the dashboard
shows itself as one ordinary `display_data` output (`text/html`, with a
`text/plain` fallback) that the kernel replaces through its display id
(`update_display`, routed by the frontend from any thread):

- live: the state badge, the time and ETA, the epoch and batch bars and
  counters, the last epochs of the metric table, the messages and the plot as
  an image (`img.nbtrain-plot`, a PNG data URI), plus a line that says how to
  steer the run from code (no buttons: nothing could answer their clicks);
- ended: the same with the whole metric table and the final plot, so the
  saved notebook keeps the final state as any output.

It shows exactly what the widgets show: it reads the values the `Presenter`
set on them (the widgets exist, never displayed) and the strings of
`nbtrain.dashboard.format`.  It is sent after the presenter's updates (the
widgets' throttle), at most every `MIN_INTERVAL` seconds (each update carries
the plot image), and at once on every change of state.
"""

from __future__ import annotations

import base64
import html
from typing import Any

from nbtrain.dashboard import format as fmt
from nbtrain.dashboard import notebook
from nbtrain.run.state import ACTIVE, ENDED

MIN_INTERVAL = 0.5
"""Seconds at least between two updates of the output, but for a change of state."""

RUN_HINT = ("Steer it from code: <code>run.pause()</code>, <code>run.resume()</code>, "
            "<code>run.stop()</code>, <code>run.resume(epochs=N)</code> "
            "(or <code>%nbtrain pause</code> / <code>resume</code> / <code>stop</code>).")
"""What the HTML output says while a `Run` (`nbtrain.fit`) trains."""

CELL_HINT = ("To stop, interrupt the kernel (&#9632;): training ends after the current "
             "batch; the model keeps its weights and this output the epochs trained.")
"""What it says while a training on the cell's own thread (a blocking fit) runs."""


def bar_html(css: str, value: int, maximum: int, color: str) -> str:
    """A progress bar as HTML (CSS class `css`), `value` of `maximum` filled in `color`."""
    share = 100.0 * min(max(value, 0), maximum) / maximum if maximum > 0 else 0.0
    return (f'<div class="{css}" style="display:inline-block;width:300px;height:10px;'
            'background:#e0e0e0;border-radius:3px;vertical-align:middle;margin-right:8px">'
            f'<div style="width:{share:.1f}%;height:100%;background:{color};'
            'border-radius:3px"></div></div>')


class HtmlView:
    """One HTML output that mirrors a `Presenter` (see the module's docstring).

    Args:
        presenter: the dashboard's `Presenter`.
        hint: the HTML line on how to steer or stop, shown while training.

    Attributes:
        display_id: the output's display id (None before `show`).
        sent: how many times the output was updated.
    """

    def __init__(self, presenter: Any, hint: str = RUN_HINT) -> None:
        self.presenter = presenter
        self.hint = hint
        self.display_id: str | None = None
        self.sent = 0
        self.html: str | None = None  # the output's HTML as last sent
        self._last: float | None = None

    @classmethod
    def show(cls, presenter: Any, hint: str = RUN_HINT) -> HtmlView | None:
        """Display the output in the current cell (main thread) and follow `presenter`;
        None where there is nowhere to display (no IPython).

        Example:

        ```python
        view = HtmlView.show(dashboard.presenter)
        ```
        """
        view = cls(presenter, hint)
        bundle = view.bundle()
        view.display_id = notebook.show(bundle)
        if view.display_id is None:
            return None
        view.html = bundle["text/html"]
        with presenter.lock:
            presenter.listeners.append(view.refresh)
            # counted as a displayed view: warnings are captured, the end is noticed
            presenter.snapshot.outputs.append(notebook.Outputs(view.display_id, None, None))
        return view

    @classmethod
    def show_for(cls, dashboard: Any) -> HtmlView | None:
        """`show` a `Dashboard`'s presenter, with the hint its training needs (a
        bound Run: steer from code; a blocking fit: interrupt the kernel)."""
        hint = RUN_HINT if getattr(dashboard, "controls", None) is not None else CELL_HINT
        return cls.show(dashboard.presenter, hint)

    def refresh(self, force: bool = False) -> None:
        """Update the output with what the presenter shows now (any thread); skipped
        when less than `MIN_INTERVAL` s since the last, unless `force`d."""
        now = self.presenter.throttle.clock()
        if not force and self._last is not None and now - self._last < MIN_INTERVAL:
            return
        bundle = self.bundle()
        if bundle["text/html"] == self.html:
            return
        self._last, self.html = now, bundle["text/html"]
        self.sent += 1
        notebook.update(self.display_id, bundle)

    def bundle(self) -> dict:
        """The output's mime bundle now: `text/html` and `text/plain`."""
        presenter = self.presenter
        with presenter.lock:
            view, state, tracker = presenter.view, presenter.state, presenter.tracker
            messages = list(presenter.messages)
            ended = state in ENDED
            color = fmt.STATE_COLORS.get(state, "#616161")
            epochs = presenter.epochs()
            progress = fmt.epoch_text(tracker.epoch + 1, epochs)
            table = fmt.epoch_table(tracker)
            metrics = fmt.snapshot_table_html(table) if ended else view.metrics.value
            parts = [
                '<div class="nbtrain-header" style="margin:4px 0">'
                f'<span class="nbtrain-state nbtrain-state-{html.escape(state)}">'
                f'{fmt.state_html(state)}</span> '
                f'<span class="nbtrain-time" style="margin-left:8px">{view.time.value}</span></div>',
                f'<div>{bar_html("nbtrain-epoch-bar", view.epoch_bar.value, view.epoch_bar.max, color)}'
                f'<span class="nbtrain-epoch-counter">{view.epoch_counter.value}</span></div>',
                f'<div>{bar_html("nbtrain-batch-bar", view.batch_bar.value, view.batch_bar.max, color)}'
                f'<span class="nbtrain-batch-counter">{view.batch_counter.value}</span></div>',
            ]
            if state in ACTIVE and self.hint:
                parts.append(f'<div class="nbtrain-hint" style="color:#616161;margin:4px 0">'
                             f"{self.hint}</div>")
            parts.append(f'<div class="nbtrain-messages">{fmt.messages_html(messages)}</div>')
            png = presenter.snapshot.png
            if png is not None and presenter.plot:
                data = base64.b64encode(png).decode("ascii")
                parts.append(f'<img class="nbtrain-plot" style="max-width:100%;display:block" '
                             f'src="data:image/png;base64,{data}">')
            parts.append(f'<div class="nbtrain-metrics">{metrics}</div>')
            text = fmt.snapshot_text(state, progress, table, messages)
        return {"text/html": f'<div class="nbtrain-html">{"".join(parts)}</div>',
                "text/plain": text}


def show_html(dashboard: Any) -> None:
    """Show `dashboard` (a `Dashboard`) as one HTML output in the current cell
    (`Dashboard.display(html=True)`)."""
    HtmlView.show_for(dashboard)


__all__ = ["CELL_HINT", "MIN_INTERVAL", "RUN_HINT", "HtmlView", "bar_html", "show_html"]
