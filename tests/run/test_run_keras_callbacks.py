"""The Keras callbacks the README names, writing real files, through a `Run`'s stop
in mid-epoch and resume, and through a finish and a continue.

CSVLogger, EarlyStopping, ReduceLROnPlateau, ModelCheckpoint(save_best_only=True),
TensorBoard, BackupAndRestore, TerminateOnNaN and LambdaCallback run together;
the stopped-and-resumed run is compared with the same training uninterrupted.
"""

from __future__ import annotations

import csv
import glob
import json
import os
import warnings

import keras
import numpy as np
import pytest
from helpers import HoldAt, make_data, make_model

import nbtrain

TIMEOUT = 60
STEPS = 8  # 64 samples, batches of 8


def standard_callbacks(root) -> dict:
    """Every callback the README names.  `mode="max"` on a falling val_loss makes
    EarlyStopping's and ReduceLROnPlateau's wait count grow every epoch."""
    os.makedirs(root, exist_ok=True)
    seen: list = []
    return {
        "csv": keras.callbacks.CSVLogger(os.path.join(root, "log.csv")),
        "early": keras.callbacks.EarlyStopping(monitor="val_loss", mode="max", patience=100),
        "plateau": keras.callbacks.ReduceLROnPlateau(monitor="val_loss", mode="max",
                                                     patience=100),
        "best": keras.callbacks.ModelCheckpoint(os.path.join(root, "best.keras"),
                                                monitor="val_loss", save_best_only=True),
        "tensorboard": keras.callbacks.TensorBoard(os.path.join(root, "tb"), update_freq="batch",
                                                   write_graph=False),
        "backup": keras.callbacks.BackupAndRestore(os.path.join(root, "backup")),
        "nan": keras.callbacks.TerminateOnNaN(),
        "lambda": keras.callbacks.LambdaCallback(
            on_epoch_end=lambda epoch, logs: seen.append((epoch, sorted(logs)))),
        "seen": seen,
    }


def make_run(callbacks: dict, epochs: int, extra=()) -> nbtrain.Run:
    x, y = make_data(64)
    listed = [cb for key, cb in callbacks.items() if key != "seen"]
    return nbtrain.Run(make_model(), x, y, batch_size=8, epochs=epochs, shuffle=False, workers=0,
                       validation_data=(x[:16], y[:16]), callbacks=listed + list(extra))


def csv_rows(root) -> list[dict]:
    with open(os.path.join(root, "log.csv"), newline="") as f:
        return list(csv.DictReader(f))


def csv_lines(root) -> list[str]:
    with open(os.path.join(root, "log.csv")) as f:
        return f.read().splitlines()


def tensorboard_steps(root, part: str, tag: str) -> list[int]:
    import tensorflow as tf

    steps = []
    for path in sorted(glob.glob(os.path.join(root, "tb", part, "events.out.tfevents.*"))):
        for event in tf.compat.v1.train.summary_iterator(path):
            steps += [event.step for value in event.summary.value if value.tag == tag]
    return steps


@pytest.fixture
def reference(tmp_path_factory):
    """The same training, never interrupted: 3 epochs."""
    root = str(tmp_path_factory.mktemp("reference"))
    callbacks = standard_callbacks(root)
    run = make_run(callbacks, epochs=3)
    run.start().wait(timeout=TIMEOUT)
    return root, callbacks, run


def test_stop_mid_epoch_resume_then_finish_and_continue(tmp_path, reference):
    ref_root, ref, ref_run = reference
    root = str(tmp_path)
    cbs = standard_callbacks(root)
    hold = HoldAt(1, 3)
    run = make_run(cbs, epochs=3, extra=[hold])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run.start()
        assert hold.reached.wait(TIMEOUT)
        run.stop()
        hold.go.set()
        run.wait(timeout=TIMEOUT)
        assert run.state == "stopped" and (run.epoch, run.batch) == (1, 4)

        # -- while stopped: what the completed epoch logged is on disk
        rows = csv_rows(root)
        assert [int(r["epoch"]) for r in rows] == [0] and rows[0]["val_loss"]
        with open(os.path.join(root, "backup", "training_metadata.json")) as f:
            assert json.load(f)["epoch"] == 1  # BackupAndRestore: epoch 0 done
        assert os.path.exists(os.path.join(root, "best.keras"))
        assert tensorboard_steps(root, "train", "epoch_loss") == [0]
        assert tensorboard_steps(root, "train", "batch_loss") == list(range(1, STEPS + 5))
        assert cbs["early"].wait == 0 and cbs["early"].best == pytest.approx(
            float(rows[0]["val_loss"]))
        assert cbs["seen"] == [(0, ["learning_rate", "loss", "val_loss"])]

        run.resume()
        run.wait(timeout=TIMEOUT)
    assert run.state == "finished"
    messages = [str(w.message) for w in caught]
    assert not [m for m in messages if "not available" in m], messages

    # -- equal to the uninterrupted training
    rows, ref_rows = csv_rows(root), csv_rows(ref_root)
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]  # one row per epoch, none lost
    assert csv_lines(root)[0] == csv_lines(ref_root)[0]  # same columns, validation included
    for key in ("loss", "val_loss"):
        np.testing.assert_allclose([float(r[key]) for r in rows],
                                   [float(r[key]) for r in ref_rows], rtol=1e-5)
    for name in ("early", "plateau"):  # best value and wait count kept across the resume
        assert cbs[name].wait == ref[name].wait == 2
        assert cbs[name].best == pytest.approx(ref[name].best, rel=1e-5)
    assert cbs["best"].best == pytest.approx(ref["best"].best, rel=1e-5)
    assert cbs["seen"] == ref["seen"]
    assert sorted(tensorboard_steps(root, "train", "batch_loss")) == list(range(1, 3 * STEPS + 1))
    assert sorted(tensorboard_steps(root, "train", "epoch_loss")) == [0, 1, 2]
    assert sorted(tensorboard_steps(root, "validation", "epoch_loss")) == [0, 1, 2]
    assert not os.path.exists(os.path.join(root, "backup"))  # training ended: backup removed

    # -- finished, then continue: a new segment, nothing truncated
    run.resume(epochs=5)
    run.wait(timeout=TIMEOUT)
    assert run.state == "finished"
    lines = csv_lines(root)
    assert [int(r["epoch"]) for r in csv_rows(root)] == [0, 1, 2, 3, 4]
    assert lines.count(lines[0]) == 1  # one header
    assert all(r["val_loss"] for r in csv_rows(root))
    batch_steps = tensorboard_steps(root, "train", "batch_loss")
    assert sorted(batch_steps) == list(range(1, 5 * STEPS + 1))  # steps keep increasing
    assert sorted(tensorboard_steps(root, "train", "epoch_loss")) == [0, 1, 2, 3, 4]
    # the continuation begins EarlyStopping / ReduceLROnPlateau afresh (as a new
    # model.fit would); ModelCheckpoint keeps its best (Keras never resets it)
    assert cbs["early"].wait == cbs["plateau"].wait == 1
    val_losses = [float(r["val_loss"]) for r in csv_rows(root)]
    assert cbs["best"].best == pytest.approx(min(val_losses), rel=1e-5)
    assert [epoch for epoch, _ in cbs["seen"]] == [0, 1, 2, 3, 4]
    assert run.history.epoch == [0, 1, 2, 3, 4]
    assert not os.path.exists(os.path.join(root, "backup"))


def test_backup_and_restore_continues_a_stopped_run_in_a_new_run(tmp_path):
    backup = str(tmp_path / "backup")
    hold = HoldAt(1, 2)
    x, y = make_data(64)
    first = nbtrain.Run(make_model(), x, y, batch_size=8, epochs=3, workers=0,
                        callbacks=[keras.callbacks.BackupAndRestore(backup), hold])
    first.start()
    assert hold.reached.wait(TIMEOUT)
    first.stop()
    hold.go.set()
    first.wait(timeout=TIMEOUT)
    # as if the kernel had died: a new model, a new Run, the same backup directory
    second = nbtrain.Run(make_model(), x, y, batch_size=8, epochs=3, workers=0,
                         callbacks=[keras.callbacks.BackupAndRestore(backup)])
    second.start().wait(timeout=TIMEOUT)
    assert second.history.epoch == [1, 2]  # epoch 0 was restored, not trained again
    assert not os.path.exists(backup)  # second training ended: its backup is removed
    first.close()


def test_early_stopping_ends_the_training_and_a_resume_appends(tmp_path):
    root = str(tmp_path)
    logger = keras.callbacks.CSVLogger(os.path.join(root, "log.csv"))
    early = keras.callbacks.EarlyStopping(monitor="val_loss", mode="max", patience=1)
    run = make_run({"csv": logger, "early": early}, epochs=10)
    run.start().wait(timeout=TIMEOUT)
    assert run.state == "stopped" and run.epoch == 2 and early.stopped_epoch == 1
    assert logger.csv_file.closed  # on_train_end ran: the training ended
    run.resume()
    run.wait(timeout=TIMEOUT)
    assert run.state == "stopped" and run.epoch == 4
    assert [int(r["epoch"]) for r in csv_rows(root)] == [0, 1, 2, 3]


def test_close_of_a_stopped_run_ends_tensorboard_and_csv_logger(tmp_path):
    root = str(tmp_path)
    cbs = {"csv": keras.callbacks.CSVLogger(os.path.join(root, "log.csv")),
           "tensorboard": keras.callbacks.TensorBoard(os.path.join(root, "tb"),
                                                      update_freq="batch", write_graph=False)}
    hold = HoldAt(1, 1)
    run = make_run(cbs, epochs=3, extra=[hold])
    run.start()
    assert hold.reached.wait(TIMEOUT)
    run.stop()
    hold.go.set()
    run.wait(timeout=TIMEOUT)
    assert not cbs["csv"].csv_file.closed  # the training is open: a resume appends
    run.close()  # on_train_end, on this thread
    assert cbs["csv"].csv_file.closed
    assert [int(r["epoch"]) for r in csv_rows(root)] == [0]
    assert tensorboard_steps(root, "train", "batch_loss") == list(range(1, STEPS + 3))
    assert tensorboard_steps(root, "train", "epoch_loss") == [0]
