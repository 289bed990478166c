"""`Snapshot`: the static copy of a dashboard written into its cell's outputs.

Every time a dashboard is displayed it makes three outputs (see
`nbtrain.dashboard.notebook`): the live widget, then the table and the plot
snapshots, empty while training.  When the run ends, `write` fills the
snapshots of every displayed view with the final table (`text/html` and
`text/plain`) and plot (`image/png`), so a saved notebook shows the final
state without a kernel; `clear` empties them when training goes on.  Both
also set the view's `SnapshotSaver`, which writes the same bundles into the
snapshot outputs from the page: a page reloaded before the end never gets the
kernel's updates (see `nbtrain.dashboard.saver`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from nbtrain.dashboard import format as fmt
from nbtrain.dashboard import notebook

if TYPE_CHECKING:
    from nbtrain.dashboard.saver import SnapshotSaver


class Snapshot:
    """The displayed outputs of one dashboard and its last plot image.

    Args:
        saver: the view's `SnapshotSaver` (None: no page writes the snapshot;
            its outputs are then not marked with a key).

    Attributes:
        outputs: the display ids of each time it was displayed.
        png: the last plot rendered (None before the first).
        saver: as given.
    """

    def __init__(self, saver: SnapshotSaver | None = None) -> None:
        self.outputs: list[notebook.Outputs] = []
        self.png: bytes | None = None
        self.saver = saver

    def bundles(self, state: str, progress: str, table: fmt.EpochTable, messages: Iterable,
                names: str, key: str | None = None) -> tuple[dict, dict | None]:
        """The table and plot mime bundles for the snapshot (`table`: the metric
        table, every epoch; `key`: the view's, which hides them where it renders)."""
        messages = list(messages)
        bundle = {"text/html": fmt.snapshot_html(state, progress, table, messages, key),
                  "text/plain": fmt.snapshot_text(state, progress, table, messages)}
        plot = None
        if self.png is not None:
            plot = notebook.png_bundle(self.png, f"<nbtrain plot: {names}>")
        return bundle, plot

    def show(self, model_id: str, table: dict | None, plot: dict | None) -> bool:
        """Display the widget `model_id` and the snapshot outputs in the current cell;
        False where there is nowhere to display (no IPython)."""
        key = self.saver.key if self.saver is not None else None
        outputs = notebook.show_dashboard(model_id, table, plot, key)
        if outputs.view is None:
            return False
        self.outputs.append(outputs)
        return True

    def write(self, table: dict | None, plot: dict | None) -> None:
        """Fill every displayed view's snapshot outputs (from the kernel, and from
        every page through the saver)."""
        for outputs in self.outputs:
            notebook.update_snapshot(outputs, table, plot)
        if self.saver is not None:
            self.saver.set_snapshot(table, plot)

    def clear(self) -> None:
        """Empty them (training goes on)."""
        self.write(None, None)


__all__ = ["Snapshot"]
