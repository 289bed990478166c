"""`Run` states that tell the truth, and one training as the callbacks see it.

- `'pausing'` until the loop holds between two batches, then `'paused'`: after
  `'paused'` no callback batch event happens until `resume()`.
- `'stopping'` until the pass has ended, then `'stopped'`.
- Across pause, stop, resume and continue the callbacks see one training:
  `on_train_begin` once, each epoch's begin and end once (with the whole epoch's
  logs), `on_train_end` when training ends (finished, a callback's stop, or
  `run.close()`); a continuation after the end is a new training segment.

Synchronisation is by listeners and events, through public API only.
"""

from __future__ import annotations

import threading
import time

import keras
import pytest
from helpers import HoldAt, make_data, make_model

import nbtrain

TIMEOUT = 30


class Log:
    """One ordered record of callback hooks (training thread) and state changes
    (any thread): what a user or a test can see, in the order it happened."""

    def __init__(self, run: nbtrain.Run):
        self.items: list[tuple] = []
        self.cond = threading.Condition()
        run.add_listener(lambda r, old, new: self.add("state", new))

    def add(self, *item) -> None:
        with self.cond:
            self.items.append(item)
            self.cond.notify_all()

    def wait_for(self, *item) -> int:
        """Block until `item` is logged; its index."""
        with self.cond:
            assert self.cond.wait_for(lambda: item in self.items, TIMEOUT), (item, self.items)
            return self.items.index(item)

    def hooks(self, *kinds) -> list[tuple]:
        return [item for item in self.items if item[0] in kinds]

    def states(self) -> list[str]:
        return [item[1] for item in self.items if item[0] == "state"]


class Events(keras.callbacks.Callback):
    """Logs every training hook; epoch ends with their log keys."""

    def __init__(self, log: Log):
        super().__init__()
        self.log, self.epoch = log, None

    def on_train_begin(self, logs=None):
        self.log.add("train_begin")

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
        self.log.add("epoch_begin", epoch)

    def on_train_batch_begin(self, batch, logs=None):
        self.log.add("batch_begin", self.epoch, batch)

    def on_train_batch_end(self, batch, logs=None):
        self.log.add("batch_end", self.epoch, batch)

    def on_epoch_end(self, epoch, logs=None):
        self.log.add("epoch_end", epoch, tuple(sorted(logs or {})))

    def on_train_end(self, logs=None):
        self.log.add("train_end")


def make_run(epochs=3, hold=None, callbacks=(), **kwargs):
    x, y = make_data(32)  # 4 batches of 8
    run = nbtrain.Run(make_model(), x, y, batch_size=8, epochs=epochs, shuffle=False,
                      validation_data=(x[:16], y[:16]), workers=kwargs.pop("workers", 1),
                      **kwargs)
    log = Log(run)
    run.add_callback(Events(log))
    for callback in callbacks:
        run.add_callback(callback)
    if hold is not None:
        run.add_callback(hold)
    return run, log


def one_training(epochs, first=0) -> list:
    """The hooks (batches left out) of one uninterrupted training."""
    return [("train_begin",)] + [
        item for epoch in range(first, epochs)
        for item in (("epoch_begin", epoch), ("epoch_end", epoch, ("loss", "val_loss")))
    ] + [("train_end",)]


def training_hooks(log: Log) -> list:
    return log.hooks("train_begin", "epoch_begin", "epoch_end", "train_end")


def batches(log: Log) -> list[tuple[int, int]]:
    return [item[1:] for item in log.hooks("batch_end")]


def every_batch(epochs, steps=4, first=0):
    return [(e, b) for e in range(first, epochs) for b in range(steps)]


def pass_threads_only() -> list[str]:
    """nbtrain threads other than the Run's pass threads (data workers)."""
    return [t.name for t in threading.enumerate()
            if t.name.startswith("nbtrain") and not t.name.startswith("nbtrain-run-pass")]


# -- pause ------------------------------------------------------------------------------


def test_paused_only_once_the_loop_holds_and_no_batch_event_after_it():
    hold = HoldAt(1, 2, before=True)
    run, log = make_run(hold=hold)
    run.start()
    assert hold.reached.wait(TIMEOUT)  # batch (1, 2) is in flight
    assert run.pause() is True
    assert run.state == "pausing" and run.allowed_actions() == {"resume", "stop"}
    with pytest.warns(RuntimeWarning, match="already pausing"):
        assert run.pause() is False  # already pausing
    hold.go.set()
    paused = log.wait_for("state", "paused")
    assert run.state == "paused" and run.allowed_actions() == {"resume", "stop"}
    # the batch in flight ended before the state said "paused", nothing after it
    assert log.items[paused - 1] == ("batch_end", 1, 2)
    count = len(log.items)
    time.sleep(0.2)  # an observation window (not synchronisation): a loop that does not hold trains on
    assert len(log.items) == count and (run.epoch, run.batch) == (1, 3)
    assert run.resume() is True
    run.wait(timeout=TIMEOUT)
    after = log.items[paused + 1:]
    assert after[0] == ("state", "running") and after[1] == ("batch_begin", 1, 3)
    assert log.states() == ["running", "pausing", "paused", "running", "finished"]
    assert batches(log) == every_batch(3)
    assert training_hooks(log) == one_training(3)


def test_resume_while_pausing_cancels_the_pause():
    hold = HoldAt(0, 1, before=True)
    run, log = make_run(hold=hold, epochs=1)
    run.start()
    assert hold.reached.wait(TIMEOUT)
    assert run.pause() is True and run.state == "pausing"
    assert run.resume() is True and run.state == "running"
    hold.go.set()
    run.wait(timeout=TIMEOUT)
    assert log.states() == ["running", "pausing", "running", "finished"]
    assert batches(log) == every_batch(1)


def test_paused_block_says_paused_only_once_held():
    hold = HoldAt(0, 1, before=True)
    run, log = make_run(hold=hold, epochs=1)
    run.start()
    assert hold.reached.wait(TIMEOUT)
    threading.Timer(0.05, hold.go.set).start()  # the batch in flight ends once the block waits
    with run.paused():
        assert run.state == "paused"
        assert log.items.index(("state", "paused")) > log.items.index(("batch_end", 0, 1))
        count = len(log.items)
        run.model.evaluate(*make_data(8), verbose=0)
        assert len(log.hooks("batch_end")) == 2 and len(log.items) == count
    run.wait(timeout=TIMEOUT)
    assert log.states() == ["running", "pausing", "paused", "running", "finished"]


# -- stop -------------------------------------------------------------------------------


def test_stopped_only_once_the_pass_has_ended():
    hold = HoldAt(1, 2, before=True)
    run, log = make_run(hold=hold, workers=2)
    at_stopped: list = []
    run.add_listener(lambda r, old, new: new == "stopped" and at_stopped.append(
        (pass_threads_only(), r.model.stop_training)))
    run.start()
    assert hold.reached.wait(TIMEOUT)
    assert run.stop() is True
    assert run.state == "stopping" and run.allowed_actions() == set()
    assert run.model.stop_training is False  # a user's stop is not a callback's stop
    hold.go.set()
    stopped = log.wait_for("state", "stopped")
    run.wait(timeout=TIMEOUT)
    assert at_stopped == [([], False)]  # the data workers had ended when it said "stopped"
    assert log.items[stopped - 1] == ("batch_end", 1, 2)  # nothing after the batch in flight
    assert len(log.items) == stopped + 1
    assert (run.epoch, run.batch) == (1, 3)


def test_stop_while_pausing_and_while_paused():
    for paused in (False, True):
        hold = HoldAt(0, 1, before=True)
        run, log = make_run(hold=hold, epochs=2)
        run.start()
        assert hold.reached.wait(TIMEOUT)
        run.pause()
        if paused:
            hold.go.set()
            log.wait_for("state", "paused")
        assert run.stop() is True
        hold.go.set()
        run.wait(timeout=TIMEOUT)
        assert run.state == "stopped" and (run.epoch, run.batch) == (0, 2)
        expected = ["running", "pausing", "paused", "stopping", "stopped"] if paused else \
            ["running", "pausing", "stopping", "stopped"]
        assert log.states() == expected
        run.resume()
        run.wait(timeout=TIMEOUT)
        assert batches(log) == every_batch(2) and training_hooks(log) == one_training(2)


# -- one training across stop, resume and continue ---------------------------------------


@pytest.mark.parametrize("at", [(1, 2), (1, 0), (0, 3)], ids=["mid-epoch", "epoch-start",
                                                             "last-batch"])
def test_stop_and_resume_is_one_training_for_the_callbacks(at):
    hold = HoldAt(*at, before=True)
    run, log = make_run(hold=hold)
    run.start()
    assert hold.reached.wait(TIMEOUT)
    run.stop()
    hold.go.set()
    run.wait(timeout=TIMEOUT)
    assert run.state == "stopped"
    hooks = training_hooks(log)
    assert ("train_end",) not in hooks and hooks[0] == ("train_begin",)
    # an interrupted epoch did not end for the callbacks
    assert [h[1] for h in hooks if h[0] == "epoch_end"] == list(range(at[0] + (at[1] == 3)))
    assert run.history.epoch == list(range(at[0] + (at[1] == 3)))
    run.resume()
    run.wait(timeout=TIMEOUT)
    assert training_hooks(log) == one_training(3)
    assert batches(log) == every_batch(3)
    assert run.history.epoch == [0, 1, 2]


def test_finish_then_continue_is_a_new_segment():
    run, log = make_run(epochs=2)
    run.start().wait(timeout=TIMEOUT)
    assert training_hooks(log) == one_training(2)
    run.resume(epochs=4)
    run.wait(timeout=TIMEOUT)
    assert training_hooks(log) == one_training(2) + one_training(4, first=2)
    assert batches(log) == every_batch(4)


def test_close_ends_the_training_of_a_stopped_run():
    hold = HoldAt(1, 1, before=True)
    run, log = make_run(hold=hold)
    run.start()
    assert hold.reached.wait(TIMEOUT)
    run.stop()
    hold.go.set()
    run.wait(timeout=TIMEOUT)
    assert ("train_end",) not in log.items
    run.close()
    assert log.items[-1] == ("train_end",) and log.items.count(("train_end",)) == 1
    run.close()
    assert log.items.count(("train_end",)) == 1
    assert run.state == "stopped"


def test_close_of_a_running_and_of_a_finished_run_ends_the_training_once():
    hold = HoldAt(0, 2, before=True)
    run, log = make_run(hold=hold)
    run.start()
    assert hold.reached.wait(TIMEOUT)
    closer = threading.Thread(target=run.close)
    closer.start()
    hold.go.set()
    closer.join(TIMEOUT)
    assert not closer.is_alive()
    assert log.items.count(("train_end",)) == 1 and ("epoch_end", 0, ("loss", "val_loss")) \
        not in log.items
    finished, log2 = make_run(epochs=1)
    finished.start().wait(timeout=TIMEOUT)
    finished.close()
    assert log2.items.count(("train_end",)) == 1


def test_a_callback_stop_ends_the_training_and_resume_begins_a_segment():
    class StopAfterEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                self.model.stop_training = True

    run, log = make_run(callbacks=[StopAfterEpoch()])
    run.start().wait(timeout=TIMEOUT)
    assert run.state == "stopped" and run.epoch == 1
    assert training_hooks(log) == one_training(1)
    run.resume()
    run.wait(timeout=TIMEOUT)
    assert run.state == "finished"
    assert training_hooks(log) == one_training(1) + one_training(3, first=1)


def test_pause_and_resume_add_no_callback_events():
    hold = HoldAt(0, 2, before=True)
    run, log = make_run(hold=hold, epochs=2)
    run.start()
    assert hold.reached.wait(TIMEOUT)
    run.pause()
    hold.go.set()
    log.wait_for("state", "paused")
    run.resume()
    run.wait(timeout=TIMEOUT)
    assert training_hooks(log) == one_training(2) and batches(log) == every_batch(2)
