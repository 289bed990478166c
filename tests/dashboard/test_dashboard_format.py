"""Pure formatting: the strings every part of the dashboard shows."""

from __future__ import annotations

from nbtrain.dashboard import format as fmt
from nbtrain.dashboard.tracker import MetricTracker


def test_durations():
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
    assert fmt.batch_text(3, None, 0.6917) == "batch 3/? · 0.692 steps/s"
    assert fmt.time_text(42, 83) == "elapsed 0:42 · ETA 1:23"
    assert fmt.time_text(42, None) == "elapsed 0:42"


def test_state_badge_has_the_state_colour():
    for state, color in fmt.STATE_COLORS.items():
        html = fmt.state_html(state)
        assert state in html and color in html
    assert fmt.STATE_COLORS["failed"] == "#c62828"


def tracker_of(epochs, running=None, steps=4, dt=0.5):
    """A tracker fed `epochs` (a list of epoch logs) on a fake clock, `dt` seconds a
    batch, then `running` (batch logs) for half an epoch."""
    tracker = MetricTracker()
    now = [0.0]
    tracker.clock = lambda: now[0]
    for epoch, logs in enumerate(epochs):
        tracker.begin_epoch(epoch, steps)
        train = {k: v for k, v in logs.items() if not k.startswith("val_")}
        for batch in range(steps):
            now[0] += dt
            tracker.batch_end(batch, train)
        tracker.end_epoch(epoch, logs)
    if running is not None:
        tracker.begin_epoch(len(epochs), steps)
        for batch in range(steps // 2):
            now[0] += dt
            tracker.batch_end(batch, running)
        tracker.sample()
    return tracker


def rows():
    return fmt.epoch_table(tracker_of(
        [{"loss": 0.5, "accuracy": 0.75, "val_loss": 0.6, "val_accuracy": 0.7}]))


def test_a_row_per_epoch_with_its_time_and_values():
    table = fmt.epoch_table(tracker_of([
        {"loss": 2.302585, "accuracy": 0.5, "val_loss": 1.9, "val_accuracy": 0.55,
         "learning_rate": 0.001},
        {"loss": 0.0123, "accuracy": 1.0, "val_loss": 0.02, "val_accuracy": 0.98,
         "learning_rate": 0.0005},
    ], running={"loss": 0.011, "accuracy": 0.9876}, dt=3.0))
    assert table.columns == ("epoch", "time", "loss", "val_loss", "accuracy", "val_accuracy")
    assert table.rows == [
        ("1", "0:12", "2.30259", "1.90000", "0.5000", "0.5500"),
        ("2", "0:12", "0.01230", "0.02000", "1.0000", "0.9800"),
        ("3 so far", "6.0 s", "0.01100", "", "0.9876", ""),
    ]
    assert table.running
    # each metric's best epoch value (validation when there is one)
    assert table.best == {(1, 3), (1, 5)}


def test_digits_are_shared_by_a_metrics_columns():
    table = fmt.epoch_table(tracker_of([{"loss": 0.25, "val_loss": 0.004}]))
    assert table.rows[0][2:] == ("0.250000", "0.004000")
    assert table.best == set()  # one epoch: nothing to compare


def test_no_learning_rate_column_and_no_running_row_once_recorded():
    table = fmt.epoch_table(tracker_of([{"loss": 1.0, "learning_rate": 0.001}]))
    assert table.columns == ("epoch", "time", "loss") and not table.running
    assert table.rows == [("1", "2.0 s", "1.0000")]
    assert not fmt.epoch_table(MetricTracker())


def test_long_runs_show_the_latest_epochs_and_say_how_many_not():
    epochs = [{"loss": 1.0 / (e + 1), "val_loss": 1.1 / (e + 1)} for e in range(25)]
    table = fmt.epoch_table(tracker_of(epochs, running={"loss": 0.03}, steps=2, dt=0.1))
    html = fmt.table_html(table)
    assert html.count("<tr") == 1 + 1 + fmt.LIVE_ROWS + 1  # head, note, rows, running
    assert "15 earlier epochs" in html and "<td" in html and ">16<" in html and ">15<" not in html
    assert 'class="nbtrain-running"' in html and "26 so far" in html
    text = fmt.table_text(table).splitlines()
    assert text[1] == "... 15 earlier epochs" and text[2].startswith("16 ")
    assert text[-1].startswith("26 so far")
    # the saved snapshot: a long run's latest epochs, as live; never a scrolling box,
    # whose sticky header an untrusted notebook's sanitiser drops
    saved = fmt.snapshot_table_html(table)
    assert saved.count("<tr") == 1 + 1 + fmt.LIVE_ROWS + 1 and "15 earlier epochs" in saved
    short = fmt.epoch_table(tracker_of(epochs[:fmt.SNAPSHOT_ROWS], steps=2, dt=0.1))
    whole = fmt.snapshot_table_html(short)  # every epoch, up to SNAPSHOT_ROWS
    assert whole.count("<tr") == 1 + fmt.SNAPSHOT_ROWS and "earlier epoch" not in whole
    for html in (saved, whole):
        assert "overflow" not in html and "sticky" not in html and "flex" not in html


def test_the_live_table_reserves_its_room_from_the_start():
    empty = fmt.table_html(fmt.epoch_table(MetricTracker()), reserve=5)
    full = fmt.table_html(fmt.epoch_table(tracker_of([{"loss": 1.0}] * 4, {"loss": 1.0})),
                          reserve=5)
    height = f"min-height:{(5 + 1) * fmt.ROW_PX + 2}px"
    assert height in empty and height in full and "<table" not in empty
    many = fmt.table_html(fmt.epoch_table(MetricTracker()), reserve=100)
    assert f"min-height:{(fmt.LIVE_ROWS + 1 + 1 + 1) * fmt.ROW_PX + 2}px" in many


def test_table_html_and_text():
    table = rows()
    html = fmt.table_html(table)
    assert html.count('<table class="nbtrain-table"') == 1 and html.count("<tr") == 2
    for column in table.columns:
        assert f">{column}</th>" in html
    text = fmt.table_text(table).splitlines()
    assert text[0].split() == ["epoch", "time", "loss", "val_loss", "accuracy", "val_accuracy"]
    assert text[1].split() == ["1", "2.0", "s", "0.5000", "0.6000", "0.7500", "0.7000"]
    assert fmt.table_html(fmt.EpochTable()) == "" and fmt.table_text(fmt.EpochTable()) == ""


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


def test_a_long_runs_live_table_formats_only_the_rows_it_shows():
    epochs = [{"loss": 1.0 / (e + 1), "val_loss": 1.1 / (e + 1)} for e in range(300)]
    tracker = tracker_of(epochs, running={"loss": 0.0001}, steps=2, dt=0.01)
    live = fmt.epoch_table(tracker, fmt.LIVE_ROWS)
    assert len(live.rows) == fmt.LIVE_ROWS + 1 and live.earlier == 290
    assert fmt.table_html(live) == fmt.table_html(fmt.epoch_table(tracker))
    # the running epoch's smaller loss sets the decimals of the whole column, every time
    assert live.rows[-1][2] == "0.0001000" and live.rows[0][2] == "0.0034364"  # epoch 291
    assert live.best == {(fmt.LIVE_ROWS - 1, 3)}  # epoch 300's val_loss, the best


def test_the_table_follows_a_history_loaded_again():
    from types import SimpleNamespace

    tracker = MetricTracker()
    tracker.load_history(SimpleNamespace(epoch=[0, 1], history={"loss": [2.0, 1.0]}))
    assert [row[2] for row in fmt.epoch_table(tracker).rows] == ["2.0000", "1.0000"]
    tracker.reset()
    tracker.load_history(SimpleNamespace(epoch=[0, 1], history={"loss": [2.0, 0.5]}))
    assert [row[2] for row in fmt.epoch_table(tracker).rows] == ["2.0000", "0.5000"]
