"""The page's half of `SnapshotSaver` (issue 12: a notebook saved after a
reload keeps the static snapshot).

- Its ES module, in Chromium, against a stand-in notebook document with the
  shape of JupyterLab's (`context.model.cells.get(i).outputs`, an output area
  model with `get`/`set`): it sets exactly this dashboard's marked snapshot
  outputs, once (a second write of the same bundles changes nothing), after
  the document has loaded; it empties them on a continue; it leaves every other
  output alone; where the widget manager has no document (VS Code, Colab) or
  anything throws, it does nothing and raises nothing.

In a real JupyterLab: tests/browser/test_reload_browser.py; in Notebook 7:
tests/browser/test_notebook7_browser.py.
"""

from __future__ import annotations

import json

from nbtrain.dashboard.saver import ESM

WIDGET = "application/vnd.jupyter.widget-view+json"

# A stand-in for what the module touches of JupyterLab: the widget model (as
# anywidget's proxy gives it) and the notebook document of the widget manager.
_HARNESS = """async (esm) => {
    const url = URL.createObjectURL(new Blob([esm], {type: "text/javascript"}));
    const saver = (await import(url)).default;
    URL.revokeObjectURL(url);
    const flush = () => new Promise((done) => setTimeout(done, 0));  // after the microtasks

    function outputArea(outputs) {
        const sets = [];
        return {
            sets,
            get length() { return outputs.length; },
            get: (i) => ({type: outputs[i].output_type, data: outputs[i].data || {},
                          metadata: outputs[i].metadata || {}, toJSON: () => outputs[i]}),
            set: (i, output) => { sets.push(i); outputs[i] = output; },
            outputs,
        };
    }
    function documentWith(cells) {
        const models = cells.map((outputs) => outputs === null ? {type: "markdown"}
                                 : {type: "code", outputs: outputArea(outputs)});
        return {cells: {get length() { return models.length; }, get: (i) => models[i]},
                models};
    }
    function widgetModel(state, manager) {
        const handlers = {};
        return {
            get: (key) => state[key],
            set: (key, value) => {
                state[key] = value;
                for (const fn of handlers[`change:${key}`] || []) fn();
            },
            on: (name, fn) => { (handlers[name] = handlers[name] || []).push(fn); },
            off: () => {},
            widget_manager: manager,
        };
    }
    const mark = (snapshot, key) => ({nbtrain: {snapshot, key}});
    const empty = (snapshot, key) => ({output_type: "display_data", data: {},
                                       metadata: mark(snapshot, key)});
    const table = {"text/html": "<div class='nbtrain-snapshot'>finished</div>",
                   "text/plain": "finished - epoch 2 / 2"};
    const plot = {"image/png": "iVBORw0KGgo=", "text/plain": "<nbtrain plot: loss>"};
    const widgetOutput = {output_type: "display_data", metadata: {},
                          data: {[%WIDGET%]: {model_id: "m1"}, "text/plain": "nbtrain dashboard"}};
    const stream = {output_type: "stream", name: "stderr", text: "a warning\\n"};
    const unmarked = {output_type: "display_data", data: {}, metadata: {}};
    const results = {};

    // A reloaded page: the document loads after the model is restored.
    let loaded;
    const ready = new Promise((done) => { loaded = done; });
    const doc = documentWith([
        null,
        [widgetOutput, empty("table", "k1"), empty("plot", "k1"), stream, unmarked],
        [empty("table", "other"), empty("plot", "other")],
        [widgetOutput, empty("table", "k1"), empty("plot", "k1")],  // a second view
    ]);
    const manager = {context: {model: doc, ready}};
    const model = widgetModel({key: "k1", table, plot}, manager);
    saver.initialize({model});
    await flush();
    results.beforeReady = doc.models.map((m) => m.outputs ? m.outputs.sets.length : null);
    loaded();
    await ready;
    await flush();
    results.written = doc.models.map((m) => m.outputs ? [...m.outputs.sets] : null);
    const copy = (i) => JSON.parse(JSON.stringify(doc.models[i].outputs.outputs));
    results.cell1 = copy(1);
    results.cell2 = copy(2);
    results.cell3 = copy(3);
    // The same bundles again (the kernel's update, a render, a change event): no write.
    saver.render({model, el: document.createElement("div")});
    model.set("plot", {...plot});
    await flush();
    results.rewritten = doc.models.map((m) => m.outputs ? m.outputs.sets.length : null);
    // A continue empties them, table and plot set together: one write each.
    model.set("table", {});
    model.set("plot", {});
    await flush();
    results.emptied = copy(1).slice(1, 3);
    results.afterEmpty = doc.models.map((m) => m.outputs ? m.outputs.sets.length : null);

    // Where there is no document, or reading it throws: nothing, and no error.
    const errors = [];
    const failing = [
        undefined,
        {},                                  // VS Code, Colab: no context
        {context: {}},                       // a context without a document
        {get context() { throw new Error("no context here"); }},
        {context: {model: {cells: {length: 1, get: () => { throw new Error("bad"); }}}}},
    ];
    for (const manager of failing) {
        try {
            const other = widgetModel({key: "k1", table, plot}, manager);
            saver.initialize({model: other});
            saver.render({model: other, el: document.createElement("div")});
            other.set("table", {});
            await flush();
        } catch (error) {
            errors.push(String(error));
        }
    }
    results.errors = errors;
    return results;
}"""


def test_the_saver_module_sets_only_its_marked_outputs_once(browser):
    context = browser.new_context()
    try:
        page = context.new_page()
        page_errors: list[str] = []
        page.on("pageerror", lambda error: page_errors.append(str(error)))
        page.set_content("<!doctype html><title>saver</title>")
        results = page.evaluate(_HARNESS.replace("%WIDGET%", json.dumps(WIDGET)), ESM)
    finally:
        context.close()
    assert results["beforeReady"] == [None, 0, 0, 0]  # nothing before the document loaded
    assert results["written"] == [None, [1, 2], [], [1, 2]]  # both views, nothing else
    widget, table, plot, stream, unmarked = results["cell1"]
    assert WIDGET in widget["data"] and stream["output_type"] == "stream"
    assert unmarked == {"output_type": "display_data", "data": {}, "metadata": {}}
    mark = {"nbtrain": {"snapshot": "table", "key": "k1"}}
    assert table == {"output_type": "display_data", "metadata": mark,
                     "data": {"text/html": "<div class='nbtrain-snapshot'>finished</div>",
                              "text/plain": "finished - epoch 2 / 2"}}
    assert plot["data"]["image/png"] == "iVBORw0KGgo="
    assert plot["metadata"] == {"nbtrain": {"snapshot": "plot", "key": "k1"}}
    assert results["cell3"][1:] == [table, plot]
    assert all(o["data"] == {} for o in results["cell2"])  # another dashboard's: untouched
    assert results["rewritten"] == [None, 2, 0, 2]  # the same bundles: no second write
    assert [o["data"] for o in results["emptied"]] == [{}, {}]
    assert [o["metadata"]["nbtrain"]["snapshot"] for o in results["emptied"]] == ["table", "plot"]
    assert results["afterEmpty"] == [None, 4, 0, 4]
    assert results["errors"] == [] and page_errors == []
