"""The dashboard in a real JupyterLab, driven through the UI by headless Chromium.

- `dashboard_test.ipynb` (a run of about 20 steps/s, slow enough to watch):
  the dashboard renders, updates from the training thread while no cell runs,
  and its Pause/Resume, Stop and Continue buttons steer the kernel's `Run`;
  only the controls that can act show; every plot dropdown shows its value;
  the table has a row per epoch; the height does not change while it trains;
- `dashboard_failure.ipynb`: a run whose data raises shows the error, and no controls;
- `notebooks/quickstart.ipynb`: after the run, saving through the UI writes
  the static snapshot (PNG plot and metric table) into the `.ipynb`, and the
  notebook reopened from disk shows it.

Screenshots of each stage go to the artifacts folder (see conftest.py).
"""

from __future__ import annotations

import base64
import json
import re
import struct

from browser_helpers import Dashboard, Notebook, Position, Status, cell_busy

try:
    from playwright.sync_api import expect
except ImportError:  # the fixtures skip, or fail under NBTRAIN_REQUIRE_BROWSER=1, and say why
    expect = None

START = 180_000  # ms: a kernel's start, TensorFlow's import and the first traced step
STEPS = 40  # batches an epoch in the test notebooks
STATUS = re.compile(r"^status\(run\)$")  # the cell printing the run's state from the kernel


def assert_only_in(notebook: Notebook, owner) -> None:
    """Nothing of the dashboard (widget, snapshot, images) is in a code cell but
    `owner`, and no cell run after it has an error or stderr output."""
    assert owner.locator(".nbtrain-dashboard").count() == 1
    for selector in (".nbtrain-dashboard", ".nbtrain-snapshot"):
        assert notebook.panel.locator(selector).count() == owner.locator(selector).count(), (
            f"{selector} found outside the cell that started the run")
    after = False
    for cell in notebook.code_cells.all():
        if "nbtrain.fit(" in cell.locator(".jp-InputArea-editor").inner_text():
            after = True
            continue
        leaks = cell.locator(".jp-OutputArea-output img, .jp-OutputArea-output [class*='nbtrain-']")
        assert leaks.count() == 0, f"dashboard output in another cell: {notebook.outputs_text(cell)}"
        if after:
            errors = cell.locator(".jp-OutputArea-output[data-mime-type*='stderr'], "
                                  ".jp-OutputArea-output[data-mime-type*='error']")
            assert errors.count() == 0, f"error output in a later cell: {notebook.outputs_text(cell)}"


def expect_held_at(dashboard: Dashboard, status: Status) -> Position:
    """Wait until the dashboard shows the loop's position as the kernel printed it
    (the end of an epoch and the next epoch's batch 0 are the same place)."""
    keys = [(status.epoch + 1) * 100000 + status.batch]
    if status.batch == 0 and status.epoch > 0:
        keys.append(status.epoch * 100000 + STEPS)
    return dashboard.wait_at(keys)


def png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", png[16:24])


def test_live_dashboard_and_controls(page, lab, screenshot):
    notebook = Notebook(page, lab, "dashboard_test.ipynb").open()
    notebook.run_all()
    fit_cell = notebook.cell_with("nbtrain.fit(")
    status_cell = notebook.cell_with(STATUS)
    dashboard = Dashboard(fit_cell)

    # It renders: header, both progress bars, the metric table, a plot with a size.
    expect(dashboard.root).to_be_visible(timeout=START)
    notebook.wait_all_executed(timeout=START)
    assert Status.parse(notebook.outputs_text(status_cell)).state == "running"
    dashboard.expect_state("running")
    # Every part's view is on the page (the learning-rate row is the last one added):
    # from here on the dashboard keeps its height until the run ends.
    expect(dashboard.lr_field).to_be_visible(timeout=START)
    watch = dashboard.watch_height()
    expect(dashboard.header).to_be_visible()
    expect(dashboard.state).to_have_text("running")
    expect(dashboard.header).to_contain_text("elapsed")
    for bar in (dashboard.epoch_bar, dashboard.batch_bar):
        expect(bar).to_be_visible()
        expect(bar.locator(".progress-bar")).to_be_attached()
    expect(dashboard.batch_counter).to_contain_text(f"/{STEPS}", timeout=START)
    table = dashboard.metrics.locator("table.nbtrain-table")
    expect(table).to_be_visible(timeout=START)
    for name in ("loss", "accuracy"):
        expect(table.locator("thead th", has_text=name)).not_to_have_count(0)
    plot = dashboard.wait_plot(timeout=START)
    assert min(plot["natural"]) > 0 and min(plot["shown"]) > 0, plot
    dashboard.wait_new_plot(dashboard.plot_source())  # redrawn as training goes on
    expect(dashboard.pause).to_be_enabled()
    expect(dashboard.pause).to_have_text("Pause")
    expect(dashboard.stop).to_be_enabled()
    expect(dashboard.continue_).to_be_hidden()  # what cannot act is hidden, not greyed

    # The plot's controls: every dropdown shows its value ("auto" chosen again too),
    # a toggle per metric.
    expect(dashboard.plot_controls).to_be_visible()
    assert dashboard.selects() == [(0, "auto"), (0, "auto")], dashboard.selects()
    expect(dashboard.metric_toggles).to_have_text(["loss", "accuracy", "learning_rate"])
    scale = dashboard.plot_controls.locator(".nbtrain-plot-scale select")
    scale.select_option("log")
    notebook.run_cell(status_cell)  # the kernel has had the change, and answered it
    assert dashboard.selects() == [(2, "log"), (0, "auto")], dashboard.selects()
    scale.select_option("auto")
    notebook.run_cell(status_cell)
    assert dashboard.selects() == [(0, "auto"), (0, "auto")], dashboard.selects()

    # Updates from the training thread reach the page while no cell is executing.
    expect(notebook.indicator).to_have_attribute("data-status", "idle")
    first = dashboard.position()
    second = dashboard.wait_advance(first, timeout=15_000)
    dashboard.wait_advance(second, timeout=15_000)
    expect(notebook.indicator).to_have_attribute("data-status", "idle")
    assert not [p for p in notebook.panel.locator(".jp-InputPrompt").all_inner_texts()
                if "*" in p], "a cell was executing"
    assert_only_in(notebook, fit_cell)
    screenshot(dashboard.output_area, "1-running")

    # Pause: the header says so, and the counters hold where the kernel's loop is held.
    dashboard.pause.click()
    dashboard.expect_state("paused", timeout=10_000)
    expect(dashboard.state).to_have_text("paused")
    expect(dashboard.pause).to_have_text("Resume")
    expect(dashboard.pause).to_be_enabled()
    paused = Status.parse(notebook.run_cell(status_cell))
    assert paused.state == "paused", paused
    held = expect_held_at(dashboard, paused)
    seen, elapsed = dashboard.watch_still(2.0)
    assert elapsed >= 2.0 and seen == {held.key}, (
        f"while paused the counters moved: {sorted(seen)} in {elapsed:.2f} s")
    dashboard.expect_state("paused")
    screenshot(dashboard.output_area, "2-paused")

    # Resume: it advances again.
    dashboard.pause.click()
    dashboard.expect_state("running", timeout=10_000)
    expect(dashboard.pause).to_have_text("Pause")
    dashboard.wait_advance(held, timeout=15_000)

    # Stop: the state says stopped (the snapshot takes over), "continue" is enabled.
    dashboard.stop.click()
    dashboard.expect_state("stopped", timeout=15_000)
    stretches = dashboard.heights_while_training(dashboard.heights(watch))
    assert len(stretches) == 1 and len(stretches[0]) == 1, (
        f"the dashboard's height changed while training:\n{dashboard.height_log(watch)}")
    expect(dashboard.snapshot).to_contain_text("stopped")
    expect(dashboard.stop).to_be_hidden()
    expect(dashboard.pause).to_be_hidden()
    expect(dashboard.continue_).to_be_visible()
    expect(dashboard.continue_).to_be_enabled()
    expect(dashboard.continue_epochs).to_be_visible()
    stopped = Status.parse(notebook.run_cell(status_cell))
    assert stopped.state == "stopped", stopped
    expect_held_at(dashboard, stopped)
    screenshot(dashboard.output_area, "3-stopped")

    # Continue to the end of the next epoch, and watch it finish.
    target = stopped.epoch + 2
    dashboard.continue_epochs.fill(str(target))
    dashboard.continue_.click()
    dashboard.expect_state("running", timeout=10_000)
    expect(dashboard.header).to_be_visible()
    expect(dashboard.snapshot).to_have_count(0)
    # a new final epoch: the table's room is made for it as training goes on again, then
    # the height holds until the end
    dashboard.wait_advance(dashboard.position(), timeout=15_000)
    watch = dashboard.watch_height()
    dashboard.expect_state("finished", timeout=60_000)
    expect(dashboard.epoch_counter).to_have_text(f"epoch {target} / {target}")
    expect(dashboard.batch_counter).to_contain_text(f"batch {STEPS}/{STEPS}")
    expect(dashboard.snapshot).to_contain_text("finished")
    expect(dashboard.snapshot).to_contain_text(f"epoch {target} / {target}")
    # the per-epoch table: a row per epoch, in the live view and in the snapshot
    expect(dashboard.epoch_rows()).to_have_count(min(target, 10))
    expect(dashboard.snapshot.locator(
        "table.nbtrain-table tbody tr:not(.nbtrain-table-note)")).to_have_count(target)
    expect(dashboard.snapshot_image).to_have_count(1)
    expect(dashboard.continue_).to_be_enabled()
    finished = Status.parse(notebook.run_cell(status_cell))
    assert (finished.state, finished.epoch, finished.epochs, finished.history) == (
        "finished", target, target, target), finished
    records = dashboard.heights(watch)
    assert all(len(heights) == 1 for heights in dashboard.heights_while_training(records)), (
        f"the dashboard's height changed while training:\n{dashboard.height_log(watch)}")
    screenshot(dashboard.output_area, "4-finished")
    assert_only_in(notebook, fit_cell)


FAILURE_LINE = re.compile(
    r"^Reading the training data failed at epoch 1/3, batch \d+/40: SlowBatches\[5\] raised "
    r"ValueError: deliberate failure in batch 5\. Fix the cause, then run\.resume\(\) goes on "
    r"at this batch\.$")


def test_failed_run_says_why_in_one_line_and_resumes_once_fixed(page, lab, screenshot):
    notebook = Notebook(page, lab, "dashboard_failure.ipynb").open()
    notebook.run_all()
    fit_cell = notebook.cell_with("nbtrain.fit(")
    dashboard = Dashboard(fit_cell)

    expect(dashboard.root).to_be_visible(timeout=START)
    dashboard.expect_state("failed", timeout=START)
    expect(dashboard.snapshot).to_contain_text("failed")
    expect(dashboard.snapshot.locator(".nbtrain-failure-line")).to_have_text(FAILURE_LINE)
    # In the live view: the one line first, then the user's own frame, the rest folded.
    report = dashboard.messages.locator(".nbtrain-failure")
    expect(report).to_have_count(1)
    line, frames = report.locator(".nbtrain-failure-line"), report.locator(".nbtrain-failure-frames")
    expect(line).to_have_text(FAILURE_LINE)
    assert report.inner_text().splitlines()[0] == line.inner_text()  # first
    expect(frames).to_contain_text("Cell In[")
    expect(frames).to_contain_text('raise ValueError(f"deliberate failure in batch {index}")')
    expect(frames).to_contain_text("ValueError: deliberate failure in batch 5")
    assert "nbtrain/engine" not in frames.inner_text() and "threading.py" not in frames.inner_text()
    folded = report.locator("details.nbtrain-failure-details")
    expect(folded.locator("summary")).to_have_text(re.compile(r"^\d+ frames? of nbtrain, Keras"))
    expect(folded.locator("pre")).to_be_hidden()  # closed until clicked
    html = report.inner_html()
    assert "\x1b" not in html and "[1m" not in html and "[0m" not in html
    # Resumable (its data failed): Resume is offered; nothing else can act (hidden).
    expect(dashboard.pause).to_have_text(re.compile("Resume"))
    expect(dashboard.pause).to_be_enabled()
    for control in (dashboard.stop, dashboard.continue_, dashboard.plot_controls,
                    dashboard.steering):
        expect(control).to_be_hidden()
    screenshot(dashboard.output_area, "5-failed")
    folded.locator("summary").click()
    expect(folded.locator("pre")).to_be_visible()
    expect(folded.locator("pre")).to_contain_text("nbtrain/engine/training.py")
    screenshot(dashboard.output_area, "5-failed-details")
    notebook.wait_all_executed(timeout=START)  # the last cell caught the error and fixed the data
    caught = notebook.outputs_text(notebook.cell_with("data.fail_at = None"))
    assert caught.startswith("caught: Reading the training data failed at epoch 1/3"), caught
    failed = Status.parse(notebook.run_cell(notebook.cell_with(STATUS)))
    assert (failed.state, failed.exception) == ("failed", "ValueError"), failed

    dashboard.pause.click()  # Resume: goes on at SlowBatches[5], now fixed
    dashboard.expect_state("finished", timeout=START)
    expect(dashboard.epoch_counter).to_have_text("epoch 3 / 3")
    expect(report).to_have_count(0)  # the failure is over
    finished = Status.parse(notebook.run_cell(notebook.cell_with(STATUS)))
    assert (finished.state, finished.epoch, finished.exception) == ("finished", 3, "NoneType")
    screenshot(dashboard.output_area, "5-resumed")
    assert_only_in(notebook, fit_cell)


QUICK_RUN = re.compile(r"^run = nbtrain\.fit\(")  # the quickstart's first run (3 epochs)
LONG_RUN = re.compile(r"^long_run = nbtrain\.fit\(")  # its run of about a minute, to steer


def test_quickstart_saved_with_its_snapshot(page, lab, screenshot):
    notebook = Notebook(page, lab, "quickstart.ipynb").open()
    notebook.run_all()
    # The run of about a minute, as a newcomer tries it: Pause, Resume, then Stop, which
    # ends the last cell's wait (Run All waits there for the end).
    long_run = Dashboard(notebook.cell_with(LONG_RUN))
    long_run.expect_state("running", timeout=START)
    long_run.wait_advance(long_run.position(), timeout=START)
    long_run.pause.click()
    long_run.expect_state("paused")
    long_run.pause.click()
    long_run.expect_state("running")
    long_run.stop.click()
    long_run.expect_state("stopped")
    notebook.wait_all_executed(timeout=START)
    waited = notebook.outputs_text(notebook.cell_with("long_run.wait()"))
    assert waited.startswith("('stopped', "), waited
    fit_cell = notebook.cell_with(QUICK_RUN)
    dashboard = Dashboard(fit_cell)
    dashboard.expect_state("finished")
    expect(dashboard.epoch_bar).to_be_visible()
    expect(dashboard.batch_bar).to_be_visible()
    expect(dashboard.epoch_counter).to_have_text("epoch 3 / 3")
    # The live view goes on showing the final state; the static snapshot, in the
    # cell's outputs for where widgets do not render, is hidden by the view's style.
    expect(dashboard.metrics).to_be_visible()
    expect(dashboard.plot).to_be_visible()
    expect(dashboard.snapshot).to_contain_text("finished")
    expect(dashboard.snapshot).to_be_hidden()
    for name in ("loss", "accuracy"):
        expect(dashboard.metrics.locator("thead th", has_text=name)).not_to_have_count(0)
        expect(dashboard.snapshot.locator("thead th", has_text=name)).not_to_have_count(0)
    expect(dashboard.snapshot_image).to_have_count(1)
    expect(dashboard.snapshot_image).to_be_hidden()
    for cell in notebook.code_cells.all():  # each dashboard in its own cell only, no error
        source = cell.locator(".jp-InputArea-editor").inner_text()
        shown = 1 if QUICK_RUN.match(source) or LONG_RUN.match(source) else 0
        assert cell.locator(".nbtrain-dashboard").count() == shown, source
        errors = cell.locator(".jp-OutputArea-output[data-mime-type*='stderr'], "
                              ".jp-OutputArea-output[data-mime-type*='error']")
        assert errors.count() == 0, f"error output: {notebook.outputs_text(cell)}"

    # Save through the UI, then read what reached the disk.
    expect(page.locator(".lm-TabBar-tab.jp-mod-dirty")).to_have_count(1)
    notebook.save()
    expect(page.locator(".lm-TabBar-tab.jp-mod-dirty")).to_have_count(0)
    saved = json.loads((lab.notebooks / "quickstart.ipynb").read_text())
    cells = [c for c in saved["cells"] if c["cell_type"] == "code"]
    fit = [c for c in cells if QUICK_RUN.match("".join(c["source"]))]
    assert len(fit) == 1
    bundles = [o.get("data", {}) for o in fit[0]["outputs"]]
    assert any("application/vnd.jupyter.widget-view+json" in b for b in bundles)
    tables = [b["text/html"] for b in bundles if "nbtrain-snapshot" in str(b.get("text/html"))]
    assert len(tables) == 1, bundles
    table = "".join(tables[0])
    assert "finished" in table and "nbtrain-table" in table
    assert re.search(r">loss<.*>accuracy<", table), table
    images = [b["image/png"] for b in bundles if "image/png" in b]
    assert len(images) == 1
    width, height = png_size(base64.b64decode("".join(images[0])))
    assert width > 100 and height > 100
    for cell in cells:
        if "nbtrain.fit(" not in "".join(cell["source"]):
            text = json.dumps(cell["outputs"])
            assert "image/png" not in text and "nbtrain-snapshot" not in text, cell

    # Reopened from disk with a new kernel (no widget state): the snapshot shows.
    assert not lab.shutdown_kernels()
    notebook = Notebook(page, lab, "quickstart.ipynb").open()
    dashboard = Dashboard(notebook.cell_with(QUICK_RUN))
    expect(dashboard.snapshot).to_contain_text("finished")
    expect(dashboard.snapshot.locator("thead th", has_text="loss")).not_to_have_count(0)
    image = dashboard.snapshot_image
    expect(image).to_be_visible()
    assert image.evaluate("(img) => img.naturalWidth * img.getBoundingClientRect().height") > 0
    screenshot(dashboard.cell.locator(".jp-Cell-outputWrapper"), "6-reopened")


def test_search_dashboard_skip_and_pause(page, lab, screenshot):
    """`nbtrain.search`'s dashboard (`search_test.ipynb`): Skip trial ends the first trial
    (recorded as skipped, the next one starts), Pause and Resume answer while a cell
    waits in `search.wait()`, the trials table and the overlaid curves update."""
    notebook = Notebook(page, lab, "search_test.ipynb").open()
    notebook.run_all()
    cell = notebook.cell_with("nbtrain.search(")
    root = cell.locator(".nbtrain-search")
    state = root.locator(".nbtrain-search-header .nbtrain-state")
    progress = root.locator(".nbtrain-search-progress")
    skip = root.locator("button.nbtrain-search-skip")
    pause = root.locator(".nbtrain-search-controls button.nbtrain-pause")
    rows = root.locator("table.nbtrain-search-trials tr.nbtrain-search-row")
    plot = root.locator("img.nbtrain-search-plot")
    current = root.locator(".nbtrain-search-current .nbtrain-dashboard")

    def shot(name: str) -> None:  # the search's header at the top of the page
        root.locator(".nbtrain-search-header").evaluate("e => e.scrollIntoView()")
        screenshot(page, name)

    # The first trial's first epoch done: skip the rest of it.
    expect(root).to_be_visible(timeout=START)
    expect(current.locator(".nbtrain-epoch-counter")).to_contain_text("epoch 2 / 3",
                                                                       timeout=START)
    expect(progress).to_contain_text("trial 1 of 3")
    skip.click()
    expect(rows.filter(has_text="skipped")).to_have_count(1, timeout=30_000)
    expect(plot).to_be_visible()  # its curves
    expect(progress).to_contain_text("trial 2 of 3 · 1 done")
    expect(root.locator(".nbtrain-search-current-title")).to_contain_text("current trial 1")
    expect(state).to_have_text("running")
    expect(root.locator(".nbtrain-search-header .nbtrain-time")).to_contain_text("ETA")
    # The current trial's own dashboard, live, with its learning rate; no run buttons.
    expect(current.locator(".nbtrain-batch-counter")).to_contain_text("/25")
    expect(current.locator(".nbtrain-steering")).to_be_visible()
    expect(current.locator("button.nbtrain-pause")).to_have_count(0)

    # Paused within the second trial, while a cell waits for the search.
    expect(current.locator(".nbtrain-state")).to_have_text("running")
    wait_cell = notebook.cell_with("search.wait()")
    assert cell_busy(wait_cell)  # the clicks below are answered in a busy cell
    pause.click()
    expect(state).to_have_text("paused", timeout=10_000)
    expect(pause).to_have_text("Resume")
    expect(current.locator(".nbtrain-state")).to_have_text("paused")
    held = current.locator(".nbtrain-batch-counter").inner_text()
    drawn = plot.get_attribute("src")
    shot("search-2-paused")
    assert current.locator(".nbtrain-batch-counter").inner_text() == held
    pause.click()
    expect(state).to_have_text("running", timeout=10_000)
    expect(pause).to_have_text("Pause")
    page.wait_for_function("([img, src]) => img.src !== src",  # the second trial's curves
                           arg=[plot.element_handle(), drawn], timeout=30_000)
    shot("search-1-running")

    notebook.wait_all_executed(timeout=60_000)
    status = notebook.outputs_text(notebook.cell_with("search state="))
    assert status.startswith("search state=finished 0:skipped 1:completed 2:completed"), status
    expect(state).to_have_text("finished")
    expect(progress).to_have_text("3 of 3 trials done")
    expect(rows).to_have_count(3)
    expect(root.locator(".nbtrain-search-best")).to_have_count(1)
    expect(skip).to_be_hidden()
    expect(root.locator(".nbtrain-search-current")).to_be_hidden()
    shot("search-3-finished")
