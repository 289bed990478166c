"""Pure formatting: the strings every part of the dashboard shows."""

from __future__ import annotations

from nbtrain.dashboard import format as fmt
from nbtrain.dashboard.tracker import MetricTracker


def test_values_and_durations():
    assert fmt.format_value(0.123456) == "0.1235"
    assert fmt.format_value(12345.6) == "1.235e+04"
    assert fmt.format_value(None) == "–"
    assert fmt.format_value(float("nan")) == "nan"
    assert fmt.format_duration(83) == "1:23"
    assert fmt.format_duration(3723) == "1:02:03"
    assert fmt.format_duration(None) == "–"
    assert fmt.format_duration(float("inf")) == "–"


def test_progress_texts():
    assert fmt.epoch_text(3, 20) == "epoch 3 / 20"
    assert fmt.epoch_text(1, None) == "epoch 1 / ?"
    assert fmt.batch_text(12, 50, None) == "batch 12/50"
    assert fmt.batch_text(12, 50, 812.4) == "batch 12/50 · 812 steps/s"
    assert fmt.batch_text(3, None, 2.345) == "batch 3/? · 2.35 steps/s"
    assert fmt.time_text(42, 83) == "elapsed 0:42 · ETA 1:23"
    assert fmt.time_text(42, None) == "elapsed 0:42"


def test_state_badge_has_the_state_colour():
    for state, color in fmt.STATE_COLORS.items():
        html = fmt.state_html(state)
        assert state in html and color in html
    assert fmt.STATE_COLORS["failed"] == "#c62828"


def rows():
    tracker = MetricTracker()
    tracker.begin_epoch(0, 2)
    tracker.batch_end(1, {"loss": 0.5, "accuracy": 0.75})
    tracker.end_epoch(0, {"loss": 0.5, "accuracy": 0.75, "val_loss": 0.6, "val_accuracy": 0.7})
    return fmt.table_rows(tracker.ordered())


def test_table_rows_html_and_text():
    table = rows()
    assert table[0] == ("loss", "0.5", "0.5", "0.6", "0.6 (epoch 1, val)")
    html = fmt.table_html(table)
    assert html.startswith("<table") and html.count("<tr>") == 3
    for column in fmt.TABLE_COLUMNS:
        assert column in html
    text = fmt.table_text(table).splitlines()
    assert text[0].split() == ["metric", "last", "epoch", "avg", "val", "best"]
    assert text[1].startswith("loss") and text[2].startswith("accuracy")
    assert fmt.table_html([]) == "" and fmt.table_text([]) == ""


def test_messages_are_escaped():
    html = fmt.messages_html([("warning", "x < y"), ("error", "Traceback\n  <boom>")])
    assert "x &lt; y" in html and "&lt;boom&gt;" in html and "<pre" in html
    assert fmt.messages_text([("warning", "w")]) == "warning: w"


def test_snapshot():
    html = fmt.snapshot_html("failed", "epoch 2 / 5", rows(), [("error", "ValueError: bad")])
    assert "failed" in html and fmt.STATE_COLORS["failed"] in html
    assert "<table" in html and "ValueError: bad" in html
    text = fmt.snapshot_text("finished", "epoch 5 / 5", rows(), [])
    assert text.splitlines()[0] == "finished - epoch 5 / 5"
    assert "loss" in text


def test_text_fallback_is_constant():
    assert fmt.TEXT_FALLBACK == "nbtrain dashboard"
