"""Validation from each source, validation_freq, and standard Keras callbacks in a real fit."""

from __future__ import annotations

import csv
import math

import keras
import numpy as np
import pytest
from helpers import BatchRecorder, RecordingSequence, batch_generator, make_data, make_model

import nbtrain


def val_losses(history):
    return history.history.get("val_loss", [])


@pytest.mark.parametrize("source", ["tuple", "tuple3", "sequence", "generator"])
@pytest.mark.parametrize("workers", [0, 1])
def test_validation_from_each_source_equals_evaluate(source, workers):
    x, y = make_data(32)
    vx, vy = make_data(24, seed=5)
    model = make_model(metrics=["mae"], optimizer=keras.optimizers.SGD(0.0))
    val = {
        "tuple": (vx, vy),
        "tuple3": (vx, vy, np.ones(24, dtype="float32")),
        "sequence": RecordingSequence(vx, vy),
        "generator": batch_generator(vx, vy),
    }[source]
    steps = 3 if source == "generator" else None
    history = nbtrain.fit_generator(model, RecordingSequence(x, y), epochs=2, verbose=0,
                                    validation_data=val, validation_steps=steps, workers=workers)
    loss, mae = model.evaluate(vx, vy, batch_size=8, verbose=0)
    assert val_losses(history) == pytest.approx([loss, loss], rel=1e-5)
    assert history.history["val_mae"] == pytest.approx([mae, mae], rel=1e-5)
    assert set(history.history) == {"loss", "mae", "val_loss", "val_mae"}


def test_validation_sequence_keeps_one_enqueuer_and_on_epoch_end_per_pass():
    x, y = make_data(16)
    val = RecordingSequence(*make_data(16, seed=3))
    nbtrain.fit_generator(make_model(), RecordingSequence(x, y), epochs=3, verbose=0,
                          validation_data=val, workers=1)
    # one enqueuer for all epochs; it may read ahead into the next pass
    assert val.served[:9] == [0, 1, "end"] * 3 and "end" not in val.served[9:]


@pytest.mark.parametrize("freq, expected", [(2, [1, 3]), ([1, 4], [0, 3])])
def test_validation_freq(freq, expected):
    x, y = make_data(16)
    rec = BatchRecorder()
    nbtrain.fit_generator(make_model(), RecordingSequence(x, y), epochs=4, verbose=0,
                          validation_data=(x, y), validation_freq=freq, callbacks=[rec])
    validated = [e[1] for e in rec.events if e[0] == "epoch_end" and "val_loss" in e[2]]
    assert validated == expected


def test_standard_callbacks_work_unchanged(tmp_path):
    x, y = make_data(32)
    seen = []
    callbacks = [
        keras.callbacks.EarlyStopping(monitor="loss", patience=0, min_delta=1e9),
        keras.callbacks.ModelCheckpoint(str(tmp_path / "m.keras"), monitor="val_loss"),
        keras.callbacks.CSVLogger(str(tmp_path / "log.csv")),
        keras.callbacks.ReduceLROnPlateau(monitor="loss", patience=0, min_delta=1e9, factor=0.5),
        keras.callbacks.TerminateOnNaN(),
        keras.callbacks.TensorBoard(str(tmp_path / "tb"), update_freq="batch"),
        keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: seen.append((e, sorted(logs)))),
    ]
    model = make_model()
    history = nbtrain.fit_generator(model, RecordingSequence(x, y), epochs=5, verbose=0,
                                    validation_data=(x, y), callbacks=callbacks)
    # EarlyStopping with an impossible min_delta stops after the 2nd epoch
    assert history.epoch == [0, 1]
    assert (tmp_path / "m.keras").exists()
    rows = list(csv.DictReader(open(tmp_path / "log.csv")))
    assert [r["epoch"] for r in rows] == ["0", "1"] and "val_loss" in rows[0]
    assert float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)) == pytest.approx(0.005)
    assert any((tmp_path / "tb").rglob("*.tfevents.*"))
    assert seen == [(0, ["learning_rate", "loss", "val_loss"]), (1, ["learning_rate", "loss", "val_loss"])] \
        or seen == [(0, ["loss", "val_loss"]), (1, ["loss", "val_loss"])]


def test_terminate_on_nan_stops_training():
    x, y = make_data(32)
    y = y.copy()
    y[:] = np.nan
    rec = BatchRecorder()
    history = nbtrain.fit_generator(make_model(), RecordingSequence(x, y), epochs=3, verbose=0,
                                    callbacks=[keras.callbacks.TerminateOnNaN(), rec])
    assert rec.pairs == [(0, 0)]
    assert math.isnan(history.history["loss"][0])


def test_backup_and_restore_resumes_an_interrupted_fit(tmp_path):
    x, y = make_data(16)

    class Boom(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 2:
                raise RuntimeError("interrupted")

    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))
    model = make_model()
    with pytest.raises(RuntimeError, match="interrupted"):
        nbtrain.fit_generator(model, RecordingSequence(x, y), epochs=4, verbose=0,
                              callbacks=[backup, Boom()])
    rec = BatchRecorder()
    history = nbtrain.fit_generator(model, RecordingSequence(x, y), epochs=4, verbose=0,
                                    callbacks=[keras.callbacks.BackupAndRestore(str(tmp_path / "backup")),
                                               rec])
    # BackupAndRestore sets model._initial_epoch; training trains the remaining epochs
    assert history.epoch[-1] == 3


def test_batch_hooks_get_index_and_logs():
    x, y = make_data(24)
    rec = BatchRecorder()
    nbtrain.fit_generator(make_model(metrics=["mae"]), RecordingSequence(x, y), epochs=1,
                          verbose=0, callbacks=[rec])
    assert rec.pairs == [(0, 0), (0, 1), (0, 2)]
    assert all(set(logs) == {"loss", "mae"} for logs in rec.batch_logs)
    assert all(isinstance(v, float) for logs in rec.batch_logs for v in logs.values())
