"""`FitLoop` across passes: an interruption raised by the gate is not an epoch end
or a training end; a continuation after the training ended is a new segment that
does not truncate what file-writing callbacks wrote."""

from __future__ import annotations

import csv
import threading
import time

import keras
import numpy as np
import pytest
from helpers import BatchRecorder, RecordingSequence, make_data, make_model

from nbtrain.engine.training import FitLoop, Interrupt


class InterruptAt:
    """A gate raising `Interrupt` before batch `at` = (epoch, batch), once."""

    def __init__(self, loop_state, at):
        self.state, self.at, self.fired = loop_state, at, False

    def __call__(self):
        if not self.fired and (self.state.epoch, self.state.batch) == self.at:
            self.fired = True
            raise Interrupt


def events_without_logs(rec):
    return [e if isinstance(e, str) else e[:2] for e in rec.events]


def make_loop(callbacks, epochs=3, **kwargs):
    x, y = make_data(32)  # 4 batches of 8
    return FitLoop(make_model(), RecordingSequence(x, y), epochs=epochs, verbose=0,
                   callbacks=callbacks, shuffle=False, workers=0,
                   validation_data=(x[:16], y[:16]), **kwargs)


@pytest.mark.parametrize("at", [(1, 2), (1, 0)], ids=["mid-epoch", "epoch-start"])
def test_an_interruption_ends_the_pass_without_epoch_or_train_end(at):
    rec = BatchRecorder()
    loop = make_loop([rec])
    loop.gate = InterruptAt(loop.state, at)
    loop.run()
    assert loop.training and (loop.state.epoch, loop.state.batch) == at
    assert events_without_logs(rec) == ["train_begin", ("epoch_begin", 0), ("epoch_end", 0),
                                        ("epoch_begin", 1)]
    loop.run()  # the same training goes on at the exact next batch
    assert not loop.training
    assert events_without_logs(rec) == ["train_begin"] + [
        event for epoch in range(3) for event in (("epoch_begin", epoch), ("epoch_end", epoch))
    ] + ["train_end"]
    assert rec.pairs == [(e, b) for e in range(3) for b in range(4)]
    # every epoch end has the whole epoch's logs, validation included
    assert all(set(e[2]) == {"loss", "val_loss"} for e in rec.events if e[0] == "epoch_end")
    assert loop.history.epoch == [0, 1, 2]


def test_end_training_runs_on_train_end_once():
    rec = BatchRecorder()
    loop = make_loop([rec])
    loop.gate = InterruptAt(loop.state, (0, 1))
    loop.run()
    assert rec.events[-1] == ("epoch_begin", 0)
    loop.end_training()
    loop.end_training()  # already ended: a no-op
    assert rec.events[-1] == "train_end" and rec.events.count("train_end") == 1
    assert not loop.training


def test_a_callback_stop_still_ends_the_epoch_and_the_training():
    class StopAt(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 1:
                self.model.stop_training = True

    rec = BatchRecorder()
    loop = make_loop([StopAt(), rec])
    loop.run()
    assert events_without_logs(rec) == ["train_begin", ("epoch_begin", 0), ("epoch_end", 0),
                                        "train_end"]
    assert not loop.training


def test_a_continuation_is_a_new_segment_appending_to_csv_logger(tmp_path):
    path = tmp_path / "log.csv"
    rec = BatchRecorder()
    logger = keras.callbacks.CSVLogger(str(path))
    loop = make_loop([logger, rec], epochs=2)
    loop.run()
    assert rec.events.count("train_end") == 1
    loop.epochs = 4
    loop.run()
    assert events_without_logs(rec).count("train_begin") == 2
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(row["epoch"]) for row in rows] == [0, 1, 2, 3]
    assert all(row["val_loss"] for row in rows)
    assert logger.append is False  # the user's setting is left as it was


def test_a_callback_added_to_an_interrupted_training_begins_with_the_next_pass(tmp_path):
    path = tmp_path / "log.csv"
    loop = make_loop([])
    loop.gate = InterruptAt(loop.state, (1, 2))
    loop.run()
    rec = BatchRecorder()
    loop.callbacks.append(keras.callbacks.CSVLogger(str(path)))
    loop.callbacks.append(rec)
    loop.run()
    assert events_without_logs(rec) == ["train_begin", ("epoch_end", 1), ("epoch_begin", 2),
                                        ("epoch_end", 2), "train_end"]
    with open(path, newline="") as f:
        assert [int(row["epoch"]) for row in csv.DictReader(f)] == [1, 2]


class HangsOnce(RecordingSequence):
    """Reading index `at` the first time asks for a stop (`stopping`, what a Run's
    stop does meanwhile) and hangs until `release` is set."""

    def __init__(self, x, y, at, stopping, release):
        super().__init__(x, y)
        self.at, self.stopping, self.release, self.hung = at, stopping, release, False

    def __getitem__(self, index):
        if index == self.at and not self.hung:
            self.hung = True
            self.stopping.set()
            assert self.release.wait(60)
        return super().__getitem__(index)


@pytest.fixture
def release():
    """Set at the end of the test: an abandoned worker thread returns and ends."""
    event = threading.Event()
    yield event
    event.set()


@pytest.mark.parametrize("per_call", [1, pytest.param(2, marks=pytest.mark.skipif(
    keras.backend.backend() == "torch",
    reason="Keras refuses steps_per_execution > 1 on PyTorch"))],
    ids=["one-step", "steps_per_execution=2"])
def test_a_wait_check_ends_a_pass_waiting_for_a_read_that_hangs_and_loses_no_batch(
        per_call, release):
    x, y = make_data(64)  # 8 batches of 8

    def trained(data):
        rec = BatchRecorder()
        model = make_model(steps_per_execution=per_call)
        loop = FitLoop(model, data, epochs=2, verbose=0, callbacks=[rec], shuffle=False,
                       workers=1)
        return loop, rec, model

    reference, ref_rec, ref_model = trained(RecordingSequence(x, y))
    reference.run()

    stopping = threading.Event()

    def check():
        if stopping.is_set():
            raise Interrupt

    data = HangsOnce(x, y, at=3, stopping=stopping, release=release)
    loop, rec, model = trained(data)
    loop.set_wait_check(check)
    began = time.monotonic()
    with pytest.warns(RuntimeWarning,
                      match=r"HangsOnce\[3\] \(thread nbtrain-sequence_0\) was still being read"):
        loop.run()  # ends: the read of batch 3 hangs, and a stop came meanwhile
    assert time.monotonic() - began < 30
    assert loop.training and (loop.state.epoch, loop.state.batch) == (0, 3 - 3 % per_call)
    assert "epoch_end" not in [e[0] for e in rec.events if isinstance(e, tuple)]
    stopping.clear()
    release.set()  # the abandoned read returns: its batch is dropped, read again below
    loop.run()
    assert rec.pairs == ref_rec.pairs and not loop.training
    for got, want in zip(model.get_weights(), ref_model.get_weights()):
        np.testing.assert_allclose(got, want, rtol=1e-6)  # every batch trained once, in order


def test_a_stop_while_a_validation_read_hangs_validates_again_on_the_next_run(release):
    x, y = make_data(64)

    def loop_for(validation):
        rec = BatchRecorder()
        loop = FitLoop(make_model(), RecordingSequence(x, y), epochs=2, verbose=0,
                       callbacks=[rec], shuffle=False, workers=1, validation_data=validation)
        return loop, rec

    reference, ref_rec = loop_for(RecordingSequence(x[:32], y[:32]))
    reference.run()

    stopping = threading.Event()

    def check():
        if stopping.is_set():
            raise Interrupt

    loop, rec = loop_for(HangsOnce(x[:32], y[:32], at=2, stopping=stopping, release=release))
    loop.set_wait_check(check)
    with pytest.warns(RuntimeWarning, match=r"HangsOnce\[2\] \(thread nbtrain-sequence_0\)"):
        loop.run()  # ends in epoch 0's validation, whose read of batch 2 hangs
    assert loop.training and (loop.state.epoch, loop.state.batch) == (0, 8)
    assert events_without_logs(rec) == ["train_begin", ("epoch_begin", 0)]  # no epoch end yet
    stopping.clear()
    release.set()
    loop.run()  # validates epoch 0 again, whole, then ends it and trains epoch 1
    assert events_without_logs(rec) == events_without_logs(ref_rec)
    assert rec.pairs == ref_rec.pairs
    for got, want in zip(loop.history.history.items(), reference.history.history.items()):
        assert got[0] == want[0]
        np.testing.assert_allclose(got[1], want[1], rtol=1e-5)  # loss and val_loss as if uninterrupted
