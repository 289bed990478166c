"""The learning rate set from the dashboard in a real JupyterLab (headless Chromium):
the field and Apply of `nbtrain.dashboard.steering`, enabled while running or paused,
reach the kernel's optimizer, and the dashboard shows the value the loop applied."""

from __future__ import annotations

import re

from browser_helpers import Dashboard, Notebook, Status

try:
    from playwright.sync_api import expect
except ImportError:  # the fixtures skip, or fail under NBTRAIN_REQUIRE_BROWSER=1, and say why
    expect = None

START = 180_000  # ms: a kernel's start, TensorFlow's import and the first traced step
STATUS = re.compile(r"^status\(run\)")


def test_the_learning_rate_set_from_the_dashboard_reaches_the_kernel(page, lab, screenshot):
    notebook = Notebook(page, lab, "steering_test.ipynb").open()
    notebook.run_all()
    fit_cell = notebook.cell_with("nbtrain.fit(")
    status_cell = notebook.cell_with(STATUS)
    dashboard = Dashboard(fit_cell)
    current = dashboard.root.locator(".nbtrain-lr-current")
    field = dashboard.root.locator(".nbtrain-lr-value input")
    apply = dashboard.root.locator("button.nbtrain-lr-apply")

    expect(dashboard.root).to_be_visible(timeout=START)
    notebook.wait_all_executed(timeout=START)
    dashboard.expect_state("running", timeout=START)
    expect(current).to_contain_text("learning rate 0.001")  # Adam's default
    expect(apply).to_be_enabled()

    # While running: the value lands at the next batch and the dashboard says where.
    field.fill("0.0005")
    field.press("Enter")  # a FloatText syncs its value on Enter (or blur)
    apply.click()
    expect(current).to_contain_text("learning rate 0.0005", timeout=15_000)
    expect(current).to_contain_text("from epoch")
    text = notebook.run_cell(status_cell)
    assert "kernel lr=0.0005 changes=[('learning_rate', 0.0005)]" in text, text
    screenshot(dashboard.output_area, "steering-1-running")

    # While paused: Apply stays enabled; the kernel has the value once training resumes.
    dashboard.pause.click()
    dashboard.expect_state("paused", timeout=10_000)
    expect(apply).to_be_enabled()
    field.fill("0.02")
    field.press("Enter")
    apply.click()
    dashboard.pause.click()  # resume
    dashboard.expect_state("running", timeout=10_000)
    expect(current).to_contain_text("learning rate 0.02", timeout=15_000)
    text = notebook.run_cell(status_cell)
    assert Status.parse(text).state == "running", text
    assert "kernel lr=0.02 changes=[('learning_rate', 0.0005), ('learning_rate', 0.02)]" in text

    dashboard.stop.click()
    dashboard.expect_state("stopped", timeout=15_000)
    expect(apply).to_be_disabled()  # stopped: nothing trains until a resume
    screenshot(dashboard.output_area, "steering-2-stopped")
