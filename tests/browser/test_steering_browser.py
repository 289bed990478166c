"""The learning rate set from the dashboard in a real JupyterLab (headless Chromium):
the field and Apply of `nbtrain.dashboard.steeringrow` reach the kernel's optimizer while
running, paused or stopped; the dashboard says a value is pending until the loop
applies it, then where it landed; an entry that is not a number is explained."""

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
    current, field = dashboard.lr_current, dashboard.lr_field
    apply, note = dashboard.lr_apply, dashboard.lr_note

    expect(dashboard.root).to_be_visible(timeout=START)
    notebook.wait_all_executed(timeout=START)
    dashboard.expect_state("running", timeout=START)
    # Adam's default as a person writes it, not float32's 0.00100000004
    expect(current).to_have_text("learning rate 0.001")
    expect(field).to_have_value("0.001")
    expect(apply).to_be_enabled()
    place = field.bounding_box()

    # While running: the value lands at the next batch and the dashboard says where.
    field.fill("0.0005")
    apply.click()
    expect(current).to_have_text("learning rate 5e-4", timeout=15_000)  # as written
    expect(note).to_contain_text(re.compile(r"^applied from epoch \d+, batch \d+$"))
    assert field.bounding_box() == place, "the field moved when the note appeared"
    text = notebook.run_cell(status_cell)
    assert "kernel lr=0.0005 changes=[('learning_rate', 0.0005)]" in text, text
    screenshot(dashboard.output_area, "steering-1-running")

    # An entry that is not a number is explained, and kept as typed.
    field.fill("abc")
    apply.click()
    expect(note).to_have_text("“abc” is not a number: write it as 0.001 or 3e-4")
    expect(field).to_have_value("abc")

    # While paused: pending until Resume (the next success clears the error), then applied.
    dashboard.pause.click()
    dashboard.expect_state("paused", timeout=10_000)
    expect(apply).to_be_enabled()
    field.fill("0.02")
    apply.click()
    expect(note).to_have_text("pending: from the next batch")
    screenshot(dashboard.output_area, "steering-2-pending")
    text = notebook.run_cell(status_cell)  # still held: the kernel has not applied it
    assert "kernel lr=0.0005 " in text, text
    expect(note).to_have_text("pending: from the next batch")
    expect(current).to_have_text("learning rate 5e-4")
    dashboard.pause.click()  # resume
    dashboard.expect_state("running", timeout=10_000)
    expect(current).to_have_text("learning rate 0.02", timeout=15_000)
    expect(note).to_contain_text("applied from epoch")
    text = notebook.run_cell(status_cell)
    assert Status.parse(text).state == "running", text
    assert "kernel lr=0.02 changes=[('learning_rate', 0.0005), ('learning_rate', 0.02)]" in text

    # Stopped: the rate can still be set; it applies when training goes on.
    dashboard.stop.click()
    dashboard.expect_state("stopped", timeout=15_000)
    expect(apply).to_be_enabled()
    field.fill("0.01")
    apply.click()
    expect(note).to_have_text("pending: from the next batch, when training goes on")
    text = notebook.run_cell(status_cell)
    assert "kernel lr=0.02 " in text, text
    screenshot(dashboard.output_area, "steering-3-stopped")
    dashboard.continue_.click()  # Resume to its own final epoch
    dashboard.expect_state("running", timeout=10_000)
    expect(current).to_have_text("learning rate 0.01", timeout=15_000)
    dashboard.stop.click()
    dashboard.expect_state("stopped", timeout=15_000)
