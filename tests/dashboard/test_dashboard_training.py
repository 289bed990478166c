"""The dashboard on real training: Keras's own `fit`, nbtrain's `fit_generator`
(compiled and `train_on_batch` paths) and a background `nbtrain.Run` driven
through the dashboard's buttons."""

from __future__ import annotations

import threading

import keras
import numpy as np
import pytest
from helpers import RecordingSequence, make_data, make_model

from nbtrain.dashboard import format as fmt
from nbtrain.dashboard.callback import Dashboard
from nbtrain.engine.training import FitLoop
from nbtrain.text import format_number, number_format

TIMEOUT = 60


@pytest.fixture
def dashboards():
    made = []

    def make(**options):
        options.setdefault("auto_display", False)
        dashboard = Dashboard(**options)
        made.append(dashboard)
        return dashboard

    yield make
    for dashboard in made:
        dashboard.close()


def per_batch_losses(model, sequence, epochs):
    """The loss of every batch, as train_on_batch reports it, on a copy of the model."""
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    clone.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    return [float(clone.train_on_batch(*sequence[i])) for _ in range(epochs)
            for i in range(len(sequence))]


def test_keras_fit(dashboards):
    x, y = make_data(64)
    dashboard = dashboards()
    model = make_model(metrics=["mae"])
    history = model.fit(x, y, batch_size=8, epochs=3, validation_split=0.25, verbose=0,
                        callbacks=[dashboard])
    view = dashboard.view
    assert dashboard.state == "finished"
    assert view.epoch_counter.value == "epoch 3 / 3"
    assert view.batch_counter.value.startswith("batch 6/6")
    table = fmt.epoch_table(dashboard.tracker)  # a row per epoch, a column per metric
    assert table.columns == ("epoch", "time", "loss", "val_loss", "mae", "val_mae")
    assert [row[0] for row in table.rows] == ["1", "2", "3"] and not table.running
    logs = history.history
    spec = number_format(logs["loss"] + logs["val_loss"])  # one format for a metric's columns
    assert table.rows[-1][2:4] == (format_number(logs["loss"][-1], spec),
                                   format_number(logs["val_loss"][-1], spec))
    assert dashboard.png is not None


def test_keras_fit_early_stopping_is_stopped(dashboards):
    x, y = make_data(64)
    dashboard = dashboards()
    model = make_model()
    stop = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: setattr(model, "stop_training", epoch == 1))
    model.fit(x, y, batch_size=8, epochs=10, verbose=0, callbacks=[stop, dashboard])
    assert dashboard.state == "stopped"
    assert dashboard.view.epoch_counter.value == "epoch 2 / 10"


@pytest.mark.parametrize("compiled", [None, False], ids=["compiled", "train_on_batch"])
def test_fit_generator_batch_curve_is_the_per_batch_loss(dashboards, compiled):
    x, y = make_data(64)
    sequence = RecordingSequence(x, y)  # 8 batches of 8
    model = make_model()
    expected = per_batch_losses(model, sequence, epochs=3)
    dashboard = dashboards()
    dashboard.tracker.sample_interval = 0  # every batch read (a plot reads 50 a second at most)
    FitLoop(model, sequence, epochs=3, verbose=0, shuffle=False, workers=0,
            callbacks=[dashboard], compiled_steps=compiled).run()
    _, plotted = dashboard.tracker.metrics["loss"].batch.arrays()
    # both step paths report the epoch's running averages; the dashboard recovers
    # each batch's own loss from them
    assert dashboard.tracker.batch_logs == "auto" and dashboard.tracker.running
    np.testing.assert_allclose(plotted, expected, rtol=2e-4, atol=1e-5)


def wait_for(predicate, what):
    event = threading.Event()
    for _ in range(TIMEOUT * 100):
        if predicate():
            return
        event.wait(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_background_run_driven_by_the_buttons(cell):
    from nbtrain.run import Run

    x, y = make_data(256)
    reached = threading.Event()
    release = threading.Event()

    class Hold(keras.callbacks.Callback):
        """Holds the training thread at batch 10 of epoch 1 until released."""

        def on_train_batch_end(self, batch, logs=None):
            if self.epoch == 1 and batch == 10 and not release.is_set():
                reached.set()
                release.wait(TIMEOUT)

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

    run = Run(make_model(), x, y, batch_size=8, epochs=2, callbacks=[Hold()], workers=0,
              validation_data=(x[:32], y[:32]))
    dashboard = Dashboard.for_run(run)
    try:
        view = dashboard.view
        assert len(cell.outputs()) == 3 and view.pause.disabled  # created
        run.start()
        assert reached.wait(TIMEOUT)
        assert dashboard.state == "running" and not view.pause.disabled
        view.pause.click()  # the kernel runs click handlers on the main thread
        assert run.state == "pausing"  # batch 10 is still in flight
        wait_for(lambda: "pausing" in view.state.value, "the pausing badge")
        assert view.pause.description == "Resume" and not view.pause.disabled
        release.set()  # batch 10 (the 11th) ends, then the loop holds before the next
        # the batch in flight is pushed as soon as it ends, whatever the throttle
        wait_for(lambda: view.batch_counter.value.startswith("batch 11/32"), "batch 11")
        wait_for(lambda: "paused" in view.state.value, "the paused badge")  # the loop holds
        assert view.pause.description == "Resume"
        assert run.batch == 11 and run.state == "paused"
        assert view.epoch_counter.value == "epoch 2 / 2"
        view.stop.click()
        run.wait(TIMEOUT)
        assert run.state == "stopped" and dashboard.state == "stopped"
        assert view.continue_.layout.display is None and not view.continue_.disabled
        assert view.continue_epochs.value == 2
        table, plot = cell.outputs()[1:]
        assert "stopped" in table["text/html"] and "image/png" in plot
        view.continue_epochs.value = 3
        view.continue_.click()
        assert cell.outputs()[1:] == [{}, {}]  # live again
        run.wait(TIMEOUT)
        assert run.state == "finished" and dashboard.state == "finished"
        assert view.epoch_counter.value == "epoch 3 / 3"
        assert view.batch_counter.value.startswith("batch 32/32")
        assert view.epoch_bar.value == 3 and view.batch_bar.value == 32
        table = cell.outputs()[1]
        losses = run.history.history["val_loss"]
        spec = number_format(run.history.history["loss"] + losses)
        assert format_number(losses[-1], spec) in table["text/html"]
        assert view.continue_epochs.value == 6
        assert view.pause.disabled and view.stop.disabled
    finally:
        release.set()
        if run.state in ("running", "paused"):
            run.stop()
            run.wait(TIMEOUT)
        dashboard.close()


def test_a_failed_run_shows_its_traceback(cell):
    from nbtrain.run import Run

    class Broken(keras.utils.PyDataset):
        def __len__(self):
            return 4

        def __getitem__(self, index):
            if index == 2:
                raise OSError("disk read failed")
            x, y = make_data(8)
            return x, y

    run = Run(make_model(), Broken(), epochs=1, workers=0, shuffle=False)
    dashboard = Dashboard.for_run(run)
    try:
        run.start()
        with pytest.raises(OSError):
            run.wait(TIMEOUT)
        assert dashboard.state == "failed"
        messages = dashboard.view.messages.value
        assert "Traceback" in messages and "OSError: disk read failed" in messages
        assert "Broken[2] raised OSError: disk read failed" in messages  # the one line
        assert fmt.STATE_COLORS["failed"] in dashboard.view.state.value
        assert "OSError: disk read failed" in cell.outputs()[1]["text/html"]
    finally:
        dashboard.close()
