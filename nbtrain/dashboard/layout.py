"""The dashboard's widgets: built once on the main thread, then only their values change.

Standard ipywidgets 8 widgets, and one invisible custom widget, the
`SnapshotSaver` (an anywidget: its JavaScript is an inline ES module, no
build step), which writes the static snapshot into a page reloaded before the
run ended.  Every widget has a stable CSS class (`nbtrain-header`,
`nbtrain-batch-bar`, ...) so a browser test can find it.  `set_traits`
changes a widget's traits in one message, and only when a value really
changed, and reports how many messages it sent, which is what the throttle's
budget counts.
"""

from __future__ import annotations

import uuid

import ipywidgets as widgets

from nbtrain.dashboard import format as fmt
from nbtrain.dashboard import pngfile
from nbtrain.dashboard.saver import SnapshotSaver
from nbtrain.run.state import CREATED, PAUSED, PAUSING, RUNNING, STOPPING

PAUSE_TIP = "Pause training after the current batch (Resume goes on with the next one)"
RESUME_TIP = "Resume training with the next batch"
LIVE = frozenset({CREATED, RUNNING, PAUSING, PAUSED, STOPPING})
"""States whose controls row keeps its place even while no control can act."""
CONTROLS_HEIGHT = "36px"
"""The controls row's height, kept while no button shows (no jump of what is below)."""
MESSAGE_LINE = "22px"
"""The messages' room while a run lives: one line, kept empty until a warning comes
(a one-line warning mid-run moves nothing below it; a longer text is shown whole, and
grows it); an ended run's messages take what they need."""
PLOT_HEIGHT = 265
"""Pixels kept for the plot before its first image: one row of panels
(`PlotRenderer`'s default figure: 2.65 in at 100 dpi)."""
PLOT_WIDTH = 900
"""The plot's width in pixels (`PlotRenderer`'s default: 9 in at 100 dpi)."""
PLOT_COLUMNS = 3
"""Panels a row of the plot (`PlotRenderer.max_columns`)."""
CONTINUE_TIPS = {
    "resume": "Resume the stopped run with its next batch and train to this final epoch",
    "continue": "Train the ended run on, from where it ended, to this final epoch",
}


def _classed(cls: type, *classes: str, **traits) -> widgets.DOMWidget:
    """A widget created with its CSS classes (no update message after the creation)."""
    return cls(_dom_classes=classes, **traits)


def set_traits(widget: widgets.Widget, **traits) -> int:
    """Set the traits that differ, in one widget message; return the messages sent (0 or 1).

    Example:

    ```python
    set_traits(bar, value=12, max=50)  # -> 1
    set_traits(bar, value=12, max=50)  # -> 0: nothing changed
    ```
    """
    changed = {k: v for k, v in traits.items() if getattr(widget, k) != v}
    if not changed:
        return 0
    with widget.hold_sync():
        for key, value in changed.items():
            setattr(widget, key, value)
    return 1


def expected_panels(model: object) -> int | None:
    """How many panels the live plot of `model`'s training will have, from its compile
    configuration: the loss, each metric (its validation drawn in the same panel) and
    the learning rate; None when that cannot be told (several outputs, a model not
    compiled, metrics that are not a plain list).

    Example:

    ```python
    model.compile(optimizer="adam", loss="mse", metrics=["mae", "mape"])
    expected_panels(model)   # -> 4: loss, mae, mape, learning_rate
    ```
    """
    try:
        config = model.get_compile_config()  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - not compiled, or a config that does not serialize
        return None
    loss = config.get("loss") if isinstance(config, dict) else None
    if loss is None or isinstance(loss, (list, tuple)) or (
            isinstance(loss, dict) and "class_name" not in loss):
        return None
    count = 1  # the loss
    for key in ("metrics", "weighted_metrics"):
        metrics = config.get(key) or []
        if not isinstance(metrics, (list, tuple)) or any(
                isinstance(m, (list, tuple, dict)) and "class_name" not in m for m in metrics):
            return None
        count += len(metrics)
    return count + 1  # the learning rate


def blank_png(width: int, height: int) -> bytes:
    """A white PNG of `width` x `height` pixels (a few hundred bytes): the plot's
    stand-in before its first image, so the page keeps the room the image will
    take, scaled to the cell's width as the image will be."""
    row = b"\x00" + b"\xff" * ((width + 7) // 8)  # filter byte, then 1-bit white pixels
    return pngfile.png(row * height, width, height, 1, pngfile.GREY, 9)


def _show(widget: widgets.DOMWidget, shown: bool) -> int:
    """Show or hide (`display: none`) a widget; return the messages sent."""
    return set_traits(widget.layout, display=None if shown else "none")


def view_parts() -> tuple[str, widgets.HTML, SnapshotSaver, widgets.HTML]:
    """What a dashboard view (a run's, a search's) starts with: its key (which marks
    its snapshot outputs), the hidden style that hides those outputs where the view
    renders, its `SnapshotSaver`, and its state badge (`running`)."""
    key = uuid.uuid4().hex[:16]
    style = _classed(widgets.HTML, "nbtrain-style", value=fmt.snapshot_css(key),
                     layout=widgets.Layout(display="none"))
    state = _classed(widgets.HTML, "nbtrain-state", "nbtrain-state-running",
                     value=fmt.state_html(RUNNING))
    return key, style, SnapshotSaver(key), state


class DashboardView:
    """The widget tree of a dashboard.

    Args:
        controls: show the Pause/Resume, Stop and continue controls.

    The view shows everything itself (state, progress, table, plot, messages)
    in every state, so a page reloaded at any moment, which restores the view
    from the kernel's widget state, shows it all.  Its `style` part (hidden)
    holds a CSS rule that hides this dashboard's static snapshot outputs
    (`key`) wherever the view renders: the snapshot is for where widgets do not.
    Its `saver` writes the snapshot into the outputs from the page, so a page
    reloaded before the end saves it too; it is a custom widget, so it is not in
    `root` (core ipywidgets only) nor in any output: the page creates its model
    (and runs its code) when the kernel opens it or a reloaded page restores it,
    and a frontend that cannot load it still draws the whole dashboard.

    Attributes:
        root: the `VBox` to display (CSS class `nbtrain-dashboard`).
        key: marks this dashboard's snapshot outputs (`format.snapshot_css`,
            `notebook.snapshot_metadata`).
        saver: the `SnapshotSaver` (CSS class `nbtrain-saver`).
    """

    def __init__(self, controls: bool = True):
        w = widgets
        self.key, self.style, self.saver, self.state = view_parts()
        self.time = _classed(w.HTML, "nbtrain-time")
        self.header = _classed(w.HBox, "nbtrain-header", children=[self.state, self.time])
        self.epoch_bar = _classed(w.IntProgress, "nbtrain-epoch-bar", max=1, description="epoch")
        self.epoch_counter = _classed(w.HTML, "nbtrain-epoch-counter",
                                      value=fmt.epoch_text(0, None))
        self.batch_bar = _classed(w.IntProgress, "nbtrain-batch-bar", max=1, description="batch")
        self.batch_counter = _classed(w.HTML, "nbtrain-batch-counter",
                                      value=fmt.batch_text(0, None, None))
        self.pause = _classed(w.Button, "nbtrain-pause", description="Pause", icon="pause",
                              disabled=True, tooltip=PAUSE_TIP)
        self.stop = _classed(w.Button, "nbtrain-stop", description="Stop", icon="stop",
                             disabled=True, tooltip="Stop training after the current batch")
        self.continue_ = _classed(
            w.Button, "nbtrain-continue", description="Continue", icon="forward", disabled=True,
            tooltip=CONTINUE_TIPS["continue"], layout=w.Layout(display="none"))
        self.continue_epochs = _classed(
            w.BoundedIntText, "nbtrain-continue-epochs", value=1, min=1, max=10**9,
            description="to epoch", style={"description_width": "initial"},
            tooltip=CONTINUE_TIPS["continue"], layout=w.Layout(width="140px", display="none"))
        self.controls = _classed(
            w.HBox, "nbtrain-controls",
            children=[self.pause, self.stop, self.continue_, self.continue_epochs],
            layout=w.Layout(display=None if controls else "none", min_height=CONTROLS_HEIGHT))
        self.messages = _classed(w.HTML, "nbtrain-messages",  # see keep_message_room
                                 layout=w.Layout(min_height=MESSAGE_LINE))
        self.metrics = _classed(w.HTML, "nbtrain-metrics")
        self.drawn = False  # the plot shows a rendered image (before: a blank stand-in)
        self.plot = _classed(w.Image, "nbtrain-plot", format="png",  # shown once drawn
                             value=blank_png(PLOT_WIDTH, PLOT_HEIGHT),
                             layout=w.Layout(max_width="100%", visibility="hidden",
                                             # its own pixels, not stretched to the cell's
                                             # width (blurred, and a height no one knows)
                                             align_self="flex-start"))
        self.root = _classed(w.VBox, "nbtrain-dashboard", children=[
            self.style,
            self.header,
            w.HBox([self.epoch_bar, self.epoch_counter]),
            w.HBox([self.batch_bar, self.batch_counter]),
            self.controls,
            self.messages,
            self.plot,  # above the table: the table's room for the epochs to come is last
            self.metrics,
        ])  # core widgets only: the saver (custom) is a model no output displays

    def set_state(self, state: str) -> int:
        """Show a run state: the badge, its colour, its CSS class `nbtrain-state-<state>`,
        and the bars in the badge's colour."""
        classes = tuple(c for c in self.state._dom_classes if not c.startswith("nbtrain-state-"))
        sent = set_traits(self.state, value=fmt.state_html(state),
                          _dom_classes=(*classes, f"nbtrain-state-{state}"))
        color = fmt.STATE_COLORS.get(state)
        for bar in (self.epoch_bar, self.batch_bar):
            sent += set_traits(bar.style, bar_color=color)
        return sent

    def set_plot(self, png: bytes) -> int:
        """Show a new plot image (before its first image the plot's room is kept, empty)."""
        self.drawn = True
        self.plot.value = png
        return 1 + set_traits(self.plot.layout, visibility=None, display=None)

    def reserve_plot_rows(self, panels: int | None) -> int:
        """Keep room for the rows of `panels` panels (three a row) until the first plot
        (None: one row, the plot's default)."""
        if self.drawn or not panels:
            return 0
        rows = -(-panels // PLOT_COLUMNS)
        return set_traits(self.plot, value=blank_png(PLOT_WIDTH, rows * PLOT_HEIGHT))

    def keep_plot_room(self, keep: bool) -> int:
        """Keep the empty plot's room (a run that trains) or give it up (a run that
        ended before its first plot, or a dashboard without plots); a plot already
        drawn stays."""
        if self.drawn:
            return 0
        return set_traits(self.plot.layout, display=None if keep else "none")

    def keep_rooms(self, live: bool, plot: bool = True) -> int:
        """Keep the rooms of what a live run will show (the plot's, when it has one,
        and a line of messages), or give them up once it ended."""
        return self.keep_plot_room(plot and live) + self.keep_message_room(live)

    def keep_message_room(self, keep: bool) -> int:
        """Keep a line for the messages while the run lives (a warning that comes
        mid-run moves nothing below it), or let them take only their own height."""
        return set_traits(self.messages.layout, min_height=MESSAGE_LINE if keep else None)

    def set_controls(self, allowed: frozenset[str] | set[str], state: str,
                     continue_to: int | None = None) -> int:
        """Show the controls whose action is legal (`allowed`, from `Run.allowed_actions`);
        the others are hidden, not greyed.

        One control per action a user means: the Pause button toggles a pause
        (Resume while pausing or paused); a stopped or finished run has one
        control to train on, "Resume to epoch N" after a stop (N: the run's own
        final epoch, so it is the plain resume, at the next batch) and
        "Continue to epoch N" after the end.  A run that allows a resume but no
        continue (a lost data worker) resumes with the toggle.  The row keeps
        its height while the run lives (created, stopping: no button), and goes
        once the run has ended with nothing left to do (failed, closed).
        """
        can_continue = "continue" in allowed
        resume = "resume" in allowed
        toggle_resume = state in (PAUSING, PAUSED) or (resume and not can_continue)
        if "pause" in allowed:
            sent = set_traits(self.pause, description="Pause", icon="pause", disabled=False,
                              tooltip=PAUSE_TIP)
        elif toggle_resume and resume:
            sent = set_traits(self.pause, description="Resume", icon="play", disabled=False,
                              tooltip=RESUME_TIP)
        else:
            sent = set_traits(self.pause, description="Pause", icon="pause", disabled=True,
                              tooltip=PAUSE_TIP)
        sent += _show(self.pause, not self.pause.disabled)
        sent += set_traits(self.stop, disabled="stop" not in allowed)
        sent += _show(self.stop, "stop" in allowed)
        kind = "resume" if resume else "continue"  # stopped: both; finished: continue only
        sent += _show(self.continue_epochs, can_continue)
        sent += _show(self.continue_, can_continue)
        sent += set_traits(self.continue_, disabled=not can_continue,
                           description=kind.capitalize(), icon="play" if kind == "resume"
                           else "forward", tooltip=CONTINUE_TIPS[kind])
        sent += set_traits(self.continue_epochs, tooltip=CONTINUE_TIPS[kind])
        if can_continue and continue_to is not None:
            sent += set_traits(self.continue_epochs, min=1, value=continue_to)
        sent += _show(self.controls, bool(allowed) or state in LIVE)
        return sent

    def close(self) -> None:
        """Close every widget (their comms too)."""
        pending = [self.root]
        while pending:
            widget = pending.pop()
            pending.extend(getattr(widget, "children", ()))
            for part in (getattr(widget, "layout", None), getattr(widget, "style", None)):
                if part is not None:
                    part.close()
            widget.close()
