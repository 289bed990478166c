"""The dashboard survives a page reload (issue 12, part 4), and what the
screenshots showed is gone (part 5), in a real JupyterLab driven by Chromium.

A reloaded page loads the notebook as last saved and restores the widgets from
the kernel; display messages of a cell run by the page before the reload never
reach it (they are routed to the request that ran the cell).  So the live view
shows everything itself, in every state, and its style hides the static
snapshot outputs wherever it renders; the view's `SnapshotSaver` writes the
snapshot into the cell's outputs from the page, so a notebook saved after a
reload keeps it.  Every reload here follows a save, as JupyterLab's autosave
or the user's would: a page reloaded before the dashboard's output was ever
saved has no output to restore.

- `dashboard_test.ipynb`: reload while running, paused, stopped and after the
  end; the controls of the reloaded page steer the run; the badge stays in the
  header, the rate goes when the run stops, one control trains it on; the
  file saved from the reloaded pages has the stopped, then the final snapshot
  in the fit cell, once.
- `dashboard_failure.ipynb`: saved before any reload (the kernel's update and
  the saver's write both reach that page), the file has one snapshot, not
  two; reload after the failure; the traceback starts at the user's frame;
  saved after the reload, the file keeps the snapshot.
"""

from __future__ import annotations

import json
import re

from browser_helpers import Dashboard, Notebook, Status, wait_cell_done

try:
    from playwright.sync_api import expect
except ImportError:  # the fixtures skip, or fail under NBTRAIN_REQUIRE_BROWSER=1, and say why
    expect = None

START = 180_000  # ms: a kernel's start, TensorFlow's import and the first traced step
STEPS = 40
STATUS = re.compile(r"^status\(run\)$")
WIDGET = "application/vnd.jupyter.widget-view+json"


def save_and_reload(notebook: Notebook) -> Dashboard:
    """Save through the UI, reload the page, wait for the kernel; the dashboard again."""
    notebook.save()
    expect(notebook.page.locator(".lm-TabBar-tab.jp-mod-dirty")).to_have_count(0)
    notebook.page.reload()
    notebook.wait_kernel_idle(timeout=START)
    dashboard = Dashboard(notebook.cell_with("nbtrain.fit("))
    expect(dashboard.root).to_be_visible(timeout=60_000)  # restored from the kernel
    return dashboard


def expect_complete(dashboard: Dashboard, state: str) -> None:
    """Everything of the live view is there: badge (in the header, above the
    bars), counters, table, plot; the static snapshot hidden where it renders."""
    dashboard.expect_state(state)
    expect(dashboard.header).to_be_visible()
    expect(dashboard.state).to_have_text(state)
    expect(dashboard.batch_counter).to_contain_text(f"/{STEPS}")
    table = dashboard.metrics.locator("table.nbtrain-table")
    expect(table).to_be_visible()
    for name in ("loss", "accuracy"):  # a column per metric (a row per epoch)
        expect(table.locator("thead th", has_text=re.compile(f"^{name}$"))).to_have_count(1)
    plot = dashboard.wait_plot()
    assert min(plot["natural"]) > 0 and min(plot["shown"]) > 0, plot
    badge, bar = dashboard.state.bounding_box(), dashboard.epoch_bar.bounding_box()
    assert badge["y"] + badge["height"] <= bar["y"], (badge, bar)  # the badge stays on top
    expect(dashboard.snapshot).to_be_hidden()
    expect(dashboard.snapshot_image).to_be_hidden()


def saved_snapshot(lab, name: str, cell_text: str = "nbtrain.fit(") -> tuple[list[str], int]:
    """The snapshot tables (`text/html`) and the number of `image/png` outputs of
    the cell with `cell_text` in the notebook `name` as saved on disk."""
    saved = json.loads((lab.notebooks / name).read_text())
    cells = [c for c in saved["cells"] if cell_text in "".join(c["source"])]
    assert len(cells) == 1, cell_text
    bundles = [o.get("data", {}) for o in cells[0]["outputs"]]
    assert len([b for b in bundles if WIDGET in b]) == 1, bundles
    tables = ["".join(b["text/html"]) for b in bundles if "nbtrain-snapshot" in
              "".join(b.get("text/html", ""))]
    return tables, len([b for b in bundles if "image/png" in b])


def badge_offset(dashboard: Dashboard) -> float:
    """The badge's height in the dashboard (px from its top edge)."""
    return dashboard.state.bounding_box()["y"] - dashboard.root.bounding_box()["y"]


def expect_no_rate(dashboard: Dashboard) -> None:
    expect(dashboard.batch_counter).not_to_contain_text("steps/s")
    expect(dashboard.header).not_to_contain_text("ETA")


def test_reload_while_running_paused_stopped_and_finished(page, lab, screenshot):
    page.on("dialog", lambda dialog: dialog.accept())  # "leave the page?" on a reload
    notebook = Notebook(page, lab, "dashboard_test.ipynb").open()
    notebook.run_all()
    dashboard = Dashboard(notebook.cell_with("nbtrain.fit("))
    expect(dashboard.root).to_be_visible(timeout=START)
    notebook.wait_all_executed(timeout=START)
    dashboard.wait_plot(timeout=START)
    expect_complete(dashboard, "running")
    badge_before = badge_offset(dashboard)

    # Running: the reloaded page shows the live run and its controls steer it.
    dashboard = save_and_reload(notebook)
    expect_complete(dashboard, "running")
    expect(dashboard.batch_counter).to_contain_text("steps/s")
    dashboard.wait_advance(dashboard.wait_advance(dashboard.position()))
    expect(dashboard.pause).to_be_enabled()
    screenshot(dashboard.output_area, "reload-1-running")
    dashboard.pause.click()
    dashboard.expect_state("paused", timeout=10_000)

    # Paused: still paused, held, with its Resume.
    dashboard = save_and_reload(notebook)
    expect_complete(dashboard, "paused")
    expect(dashboard.pause).to_have_text("Resume")
    expect(dashboard.pause).to_be_enabled()
    expect_no_rate(dashboard)
    held = dashboard.position()
    seen, elapsed = dashboard.watch_still(1.0)
    assert elapsed >= 1.0 and seen == {held.key}, sorted(seen)
    screenshot(dashboard.output_area, "reload-2-paused")
    dashboard.pause.click()
    dashboard.expect_state("running", timeout=10_000)
    dashboard.wait_advance(held)
    dashboard.stop.click()
    dashboard.expect_state("stopped", timeout=15_000)

    # Stopped: one control trains it on, "Resume to epoch 50" (its own final epoch).
    # The stop happened in a reloaded page, which the kernel's snapshot update
    # never reaches: the saver wrote it (in the page, as the finished run's below),
    # and the saved file has it.
    expect(dashboard.snapshot).to_have_count(1, timeout=15_000)
    expect(dashboard.snapshot).to_contain_text("stopped")
    dashboard = save_and_reload(notebook)
    tables, images = saved_snapshot(lab, "dashboard_test.ipynb")
    assert len(tables) == 1 and "stopped" in tables[0] and images == 1, tables
    expect_complete(dashboard, "stopped")
    expect_no_rate(dashboard)
    expect(dashboard.pause).to_be_disabled()
    expect(dashboard.continue_).to_have_text("Resume")
    expect(dashboard.continue_).to_be_enabled()
    expect(dashboard.continue_epochs).to_have_value("50")
    stopped = Status.parse(notebook.run_cell(notebook.cell_with(STATUS)))
    assert stopped.state == "stopped", stopped
    screenshot(dashboard.output_area, "reload-3-stopped")
    target = stopped.epoch + 2
    dashboard.continue_epochs.fill(str(target))
    dashboard.continue_.click()
    dashboard.expect_state("running", timeout=10_000)

    # The end, in the page reloaded meanwhile: badge, table and plot, no stale rate.
    dashboard.expect_state("finished", timeout=90_000)
    expect_complete(dashboard, "finished")
    expect_no_rate(dashboard)
    expect(dashboard.epoch_counter).to_have_text(f"epoch {target} / {target}")
    expect(dashboard.batch_counter).to_have_text(f"batch {STEPS}/{STEPS}")
    expect(dashboard.continue_).to_have_text("Continue")
    badge_after = badge_offset(dashboard)
    assert abs(badge_after - badge_before) < 2, (badge_before, badge_after)
    screenshot(dashboard.output_area, "reload-4-finished")

    # Saved from this page, reloaded before the end: the fit cell has the final
    # snapshot (table with the final epoch, plot), once.
    expect(dashboard.snapshot).to_have_count(1)
    expect(dashboard.snapshot).to_contain_text(f"epoch {target} / {target}")
    expect(dashboard.snapshot).to_be_hidden()
    notebook.save()
    expect(page.locator(".lm-TabBar-tab.jp-mod-dirty")).to_have_count(0)
    tables, images = saved_snapshot(lab, "dashboard_test.ipynb")
    assert len(tables) == 1 and images == 1, tables
    assert "finished" in tables[0] and f"epoch {target} / {target}" in tables[0]

    # Reloaded after the end: the final state again, and the file keeps it.
    dashboard = save_and_reload(notebook)
    expect_complete(dashboard, "finished")
    expect(dashboard.epoch_counter).to_have_text(f"epoch {target} / {target}")
    expect_no_rate(dashboard)
    tables, images = saved_snapshot(lab, "dashboard_test.ipynb")
    assert len(tables) == 1 and images == 1 and f"epoch {target} / {target}" in tables[0]

    # Displayed again in a new cell: a second view, with a snapshot of its own
    # there; the fit cell's is not duplicated.
    notebook.cell_with(STATUS).locator(".jp-InputArea-editor").click()
    page.keyboard.press("Escape")
    page.keyboard.press("b")  # a new cell below, the last one
    page.keyboard.press("Enter")
    page.keyboard.type("run")
    page.keyboard.press("Control+Enter")
    again = notebook.code_cells.last
    wait_cell_done(again)
    expect_complete(Dashboard(again), "finished")
    notebook.save()
    expect(page.locator(".lm-TabBar-tab.jp-mod-dirty")).to_have_count(0)
    saved = json.loads((lab.notebooks / "dashboard_test.ipynb").read_text())
    shown = [c for c in saved["cells"] if "".join(c["source"]).strip() == "run"]
    assert len(shown) == 1
    bundles = [o.get("data", {}) for o in shown[0]["outputs"]]
    tables = ["".join(b["text/html"]) for b in bundles if "nbtrain-snapshot" in
              "".join(b.get("text/html", ""))]
    assert len(tables) == 1 and "finished" in tables[0], bundles
    assert f"epoch {target} / {target}" in tables[0]
    assert len([b for b in bundles if "image/png" in b]) == 1
    tables, images = saved_snapshot(lab, "dashboard_test.ipynb")
    assert len(tables) == 1 and images == 1


def test_reload_after_a_failure_keeps_the_snapshot(page, lab, screenshot):
    page.on("dialog", lambda dialog: dialog.accept())
    notebook = Notebook(page, lab, "dashboard_failure.ipynb").open()
    notebook.run_all()
    dashboard = Dashboard(notebook.cell_with("nbtrain.fit("))
    expect(dashboard.root).to_be_visible(timeout=START)
    dashboard.expect_state("failed", timeout=START)
    notebook.wait_all_executed(timeout=START)
    expect(dashboard.snapshot).to_contain_text("ValueError: deliberate failure in batch 5")
    expect(dashboard.snapshot).to_be_hidden()  # the live view shows it all
    # This page ran the cell: the kernel's update and the saver's write both
    # reach it, and set the same outputs; saved, the file has one snapshot.
    expect(dashboard.snapshot).to_have_count(1)
    notebook.save()
    expect(page.locator(".lm-TabBar-tab.jp-mod-dirty")).to_have_count(0)
    saved = json.loads((lab.notebooks / "dashboard_failure.ipynb").read_text())
    fit = [c for c in saved["cells"] if "nbtrain.fit(" in "".join(c["source"])][0]
    marked = [o for o in fit["outputs"] if "nbtrain" in o.get("metadata", {})]
    assert [o["metadata"]["nbtrain"]["snapshot"] for o in marked] == ["table", "plot"], fit
    assert len(fit["outputs"]) == len([o for o in fit["outputs"] if o["output_type"] ==
                                       "stream"]) + 3, fit["outputs"]  # widget, table, plot
    tables, images = saved_snapshot(lab, "dashboard_failure.ipynb")
    assert len(tables) == 1 and "failed" in tables[0] and images <= 1, tables  # a plot if drawn

    dashboard = save_and_reload(notebook)
    dashboard.expect_state("failed")
    expect(dashboard.header).to_be_visible()
    # the failure as before the reload: its one line, then the user's own frames
    report = dashboard.messages.locator(".nbtrain-failure")
    expect(report.locator(".nbtrain-failure-line")).to_contain_text(
        "SlowBatches[5] raised ValueError: deliberate failure in batch 5")
    error = report.locator("pre.nbtrain-failure-frames")
    expect(error).to_be_visible()
    text = error.inner_text()
    frames = [line for line in text.splitlines()
              if line.startswith("  ") and not line.startswith("    ")]
    assert frames and all(line.startswith("  Cell In[") for line in frames), text
    assert "in __getitem__" in frames[-1], text
    assert "ValueError: deliberate failure in batch 5" in text
    assert "threading" not in text and "nbtrain/" not in text
    # its data failed: Resume is the one control (the others hidden, not greyed)
    expect(dashboard.pause).to_have_text(re.compile("Resume"))
    expect(dashboard.pause).to_be_enabled()
    for control in (dashboard.stop, dashboard.continue_, dashboard.steering):
        expect(control).to_be_hidden()
    expect(dashboard.snapshot).to_be_hidden()
    screenshot(dashboard.output_area, "reload-5-failed")

    # Saved after the reload: the file keeps the static snapshot, as without one.
    page.locator(".jp-NotebookPanel .jp-Notebook").click()
    notebook.save()
    saved = json.loads((lab.notebooks / "dashboard_failure.ipynb").read_text())
    fit = [c for c in saved["cells"] if "nbtrain.fit(" in "".join(c["source"])][0]
    bundles = [o.get("data", {}) for o in fit["outputs"]]
    assert any(WIDGET in b for b in bundles)
    tables = ["".join(b["text/html"]) for b in bundles if "nbtrain-snapshot" in
              "".join(b.get("text/html", ""))]
    assert len(tables) == 1 and "failed" in tables[0], bundles
    assert "ValueError: deliberate failure in batch 5" in tables[0]

    # Reopened with a new kernel (the widgets' models are gone): the snapshot shows.
    assert not lab.shutdown_kernels()
    notebook = Notebook(page, lab, "dashboard_failure.ipynb").open()
    dashboard = Dashboard(notebook.cell_with("nbtrain.fit("))
    expect(dashboard.snapshot).to_be_visible()
    expect(dashboard.snapshot).to_contain_text("failed")


def _html_output_state(cell) -> str:
    """The state class of the HTML display's badge (`nbtrain-state-<state>`)."""
    badge = cell.locator(".nbtrain-html .nbtrain-state")
    return next((c for c in (badge.get_attribute("class") or "").split()
                 if c.startswith("nbtrain-state-") and c != "nbtrain-state"), "")


def test_html_display_and_a_dashboard_without_its_custom_widget(page, lab, screenshot):
    """Issue 29: `display="html"` is one output that updates while training and
    ends with the final table and plot, saved with the notebook; and a page that
    cannot load the custom widget (anywidget's code blocked, as a frontend without
    it) still draws the whole dashboard, made of core widgets only."""
    blocked: list[str] = []

    def block(route):
        blocked.append(route.request.url)
        route.abort()

    page.route(re.compile(r"/lab/extensions/anywidget/"), block)
    name = "frontends_test.ipynb"
    notebook = Notebook(page, lab, name).open(timeout=START)
    notebook.run_all()

    # The HTML output: live updates (the batch counter moves, the badge says running)
    cell = notebook.cell_with("display=")
    output = cell.locator(".nbtrain-html")
    expect(output).to_be_visible(timeout=START)
    counter = output.locator(".nbtrain-batch-counter")
    seen: set[str] = set()
    page.wait_for_function(
        """(cell) => {
            const badge = cell.querySelector('.nbtrain-html .nbtrain-state');
            const counter = cell.querySelector('.nbtrain-html .nbtrain-batch-counter');
            if (!badge || !counter) return false;
            window.__nbtrainSeen = window.__nbtrainSeen || new Set();
            if (badge.classList.contains('nbtrain-state-running'))
                window.__nbtrainSeen.add(counter.textContent);
            return window.__nbtrainSeen.size >= 3;
        }""", arg=cell.element_handle(), timeout=START, polling=50)
    seen.update(page.evaluate("[...window.__nbtrainSeen]"))
    assert len(seen) >= 3, seen  # updated in place while training
    screenshot(cell.locator(".jp-Cell-outputWrapper"), "frontends-1-html-running")
    expect(cell.locator(".nbtrain-html .nbtrain-state-finished")).to_have_count(1, timeout=60_000)
    expect(cell.locator(".jp-OutputArea-output")).to_have_count(1)  # one output, in place
    expect(cell.locator(".nbtrain-dashboard")).to_have_count(0)  # no widget
    rows = output.locator(".nbtrain-metrics table tbody tr")
    expect(rows).to_have_count(6)  # the final table: every epoch
    plot = output.locator("img.nbtrain-plot")
    page.wait_for_function("(img) => img.complete && img.naturalWidth > 0",
                           arg=plot.element_handle(), timeout=10_000)
    expect(counter).to_have_text("batch 12/12")
    screenshot(cell.locator(".jp-Cell-outputWrapper"), "frontends-2-html-finished")

    # The widget dashboard in a page without anywidget: drawn whole, to its end.
    dashboard = Dashboard(notebook.cell_with("epochs=3)"))
    expect(dashboard.root).to_be_visible(timeout=START)
    dashboard.expect_state("finished", timeout=60_000)
    expect(dashboard.epoch_counter).to_have_text("epoch 3 / 3")
    expect(dashboard.metrics.locator("table.nbtrain-table")).to_be_visible()
    dashboard.wait_plot(timeout=30_000)
    assert blocked, "anywidget's code was never requested: nothing was blocked"
    screenshot(dashboard.output_area, "frontends-3-dashboard-without-anywidget")

    # Saved: the HTML output is the final state, table and plot, as any output.
    notebook.wait_all_executed(timeout=60_000)
    notebook.save()
    expect(page.locator(".lm-TabBar-tab.jp-mod-dirty")).to_have_count(0)
    saved = json.loads((lab.notebooks / name).read_text())
    (fit,) = [c for c in saved["cells"] if c["cell_type"] == "code"
              and "display=" in "".join(c["source"])]
    outputs = [o for o in fit["outputs"] if o["output_type"] != "stream"]
    assert len(outputs) == 1 and WIDGET not in outputs[0]["data"], outputs
    html = "".join(outputs[0]["data"]["text/html"])
    assert "nbtrain-state-finished" in html and "data:image/png;base64," in html
    assert html.count("<tr") == 7, html  # header and 6 epochs
    assert "finished - epoch 6 / 6" in "".join(outputs[0]["data"]["text/plain"])
    tables, images = saved_snapshot(lab, name, "epochs=3)")  # the widget's snapshot too
    assert len(tables) == 1 and "finished" in tables[0] and images == 1, tables
