"""`SnapshotSaver`: the dashboard's static snapshot, carried into a reloaded page.

A dashboard's table and plot snapshots are ordinary outputs of its cell, set
by the kernel with `update_display_data` (`nbtrain.dashboard.notebook`).
Jupyter routes those messages to the page that ran the cell only, so a page
reloaded before the run ended never gets the final snapshot into the cell, and
a notebook saved from it keeps the snapshot outputs as they were last saved
(empty while training).  Widget state, unlike display messages, reaches every
page: the widget manager restores it from the kernel on a new connection.

So the dashboard's view carries this small invisible widget, whose synced
traits are the snapshot bundles (`table`, `plot`: empty while training) and
the dashboard's `key`.  Its front-end half (an anywidget ES module, inline: no
build step, nothing downloaded) sets the snapshot outputs of the notebook
document to the bundles whenever they change and when the widget's model is
restored, through the notebook model's public API:

- where the widget manager exposes the notebook document
  (`@jupyter-widgets/jupyterlab-manager`'s `WidgetManager.context`: JupyterLab
  and Notebook 7), it walks the cells' outputs for the `display_data` outputs
  whose metadata marks them as this dashboard's snapshot
  (`{"nbtrain": {"snapshot": "table" | "plot", "key": key}}`, written by
  `notebook.snapshot_metadata`) and sets each to its bundle with
  `outputs.set(index, output)`, the call JupyterLab's own output area makes
  for an `update_display_data`;
- an output that already holds the bundle is left alone (the page that ran
  the cell also gets the kernel's update: two writes change nothing, and no
  output is ever added or removed, so JupyterLab's display-id bookkeeping
  stays valid);
- anywhere else (VS Code, Colab, no front-end) it does nothing, and it never
  throws.

The traits change only when the snapshot outputs do (a run stops, finishes,
fails or goes on): nothing per batch.
"""

from __future__ import annotations

import anywidget
import ipywidgets
import traitlets

ESM = r"""
// nbtrain's SnapshotSaver: set this dashboard's snapshot outputs in the notebook
// document to the bundles the kernel holds (see nbtrain/dashboard/saver.py).
const MARK = "nbtrain";

function notebookOf(model) {
  try {
    const context = model.widget_manager && model.widget_manager.context;
    const notebook = context && context.model;
    return notebook && notebook.cells && typeof notebook.cells.get === "function"
      ? notebook : null;
  } catch (error) {
    return null;
  }
}

function text(value) {
  return Array.isArray(value) ? value.join("") : value;
}

function same(data, bundle) {
  const keys = Object.keys(bundle);
  return Object.keys(data).length === keys.length && keys.every(
    (key) => JSON.stringify(text(data[key])) === JSON.stringify(text(bundle[key])));
}

function write(model) {
  const notebook = notebookOf(model);
  const key = model.get("key");
  if (!notebook || !key) return;
  const bundles = {table: model.get("table") || {}, plot: model.get("plot") || {}};
  for (let c = 0; c < notebook.cells.length; c++) {
    const outputs = notebook.cells.get(c).outputs;  // code cells only
    if (!outputs || typeof outputs.set !== "function") continue;
    for (let i = 0; i < outputs.length; i++) {
      const output = outputs.get(i);
      const mark = output && output.type === "display_data" && output.metadata
        ? output.metadata[MARK] : null;
      if (!mark || mark.key !== key || !(mark.snapshot in bundles)) continue;
      const bundle = bundles[mark.snapshot];
      if (same(output.data || {}, bundle)) continue;
      outputs.set(i, {output_type: "display_data", data: bundle,
                      metadata: {[MARK]: {snapshot: mark.snapshot, key}}});
    }
  }
}

function schedule(model, state) {
  // One write for changes that arrive together (table and plot in one message).
  if (state.pending) return;
  state.pending = true;
  Promise.resolve().then(() => {
    state.pending = false;
    try {
      write(model);
    } catch (error) {
      console.debug("nbtrain: the snapshot was not written", error);
    }
  });
}

export default {
  initialize({ model }) {
    const state = {pending: false};
    const changed = () => schedule(model, state);
    model.on("change:table", changed);
    model.on("change:plot", changed);
    model.on("change:key", changed);
    let ready = null;
    try {
      const context = model.widget_manager && model.widget_manager.context;
      ready = context && context.ready;
    } catch (error) {
      ready = null;
    }
    // A restored model (a reloaded page): write once the document has loaded.
    Promise.resolve(ready).then(changed, () => {});
  },
  render({ model }) {
    schedule(model, {pending: false});
  },
};
"""


class SnapshotSaver(anywidget.AnyWidget):
    """An invisible widget that writes a dashboard's static snapshot into the
    notebook document from the page, also in a page reloaded after its cell ran.

    Held by `DashboardView` but displayed nowhere: its code runs in the page
    when the model is created (`initialize`); `Snapshot` sets
    it wherever it fills or empties the snapshot outputs.

    Args:
        key: the dashboard's key (`DashboardView.key`), which the metadata of
            its snapshot outputs carries.

    Attributes:
        key: as given.
        table: the table snapshot's mime bundle (`text/html`, `text/plain`); `{}`
            while training.
        plot: the plot snapshot's mime bundle (`image/png`, `text/plain`); `{}`
            while training or before the first plot.

    Example:

    ```python
    saver = SnapshotSaver("3f2a...")
    saver.set_snapshot(table, plot)   # the run ended: every page writes these
    saver.set_snapshot(None, None)    # training goes on: the outputs are emptied
    ```
    """

    _esm = ESM
    key = traitlets.Unicode("").tag(sync=True)
    table = traitlets.Dict().tag(sync=True)
    plot = traitlets.Dict().tag(sync=True)

    def __init__(self, key: str, **kwargs) -> None:
        kwargs.setdefault("layout", ipywidgets.Layout(display="none"))
        kwargs.setdefault("_dom_classes", ("nbtrain-saver",))
        super().__init__(key=key, **kwargs)

    def set_snapshot(self, table: dict | None, plot: dict | None) -> None:
        """Set the snapshot bundles (None: empty), in one message and only if they changed."""
        table, plot = dict(table or {}), dict(plot or {})
        if table == self.table and plot == self.plot:
            return
        with self.hold_sync():
            self.table = table
            self.plot = plot


__all__ = ["SnapshotSaver"]
