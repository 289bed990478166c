"""`nbtrain.Run` / `nbtrain.fit`: background training, its controls and its state machine.

Every control test asserts the exact list of `(epoch, batch)` pairs trained and
which data each trained batch held (read where the loop consumes it), so a
batch trained twice or skipped shows up.  Synchronisation is by events set from
callbacks on the training thread, never by sleeping.
"""

from __future__ import annotations

import _thread
import importlib.util
import multiprocessing
import random
import signal
import subprocess
import sys
import threading
import time
import warnings

import keras
import numpy as np
import pytest
from helpers import FEATURES, make_model

import nbtrain
from nbtrain.interactive import TextStatus, attach_display, in_notebook
from nbtrain.run import Run, RunHistory

TIMEOUT = 30  # seconds: generous bounds on waits that normally take milliseconds

VALID = {
    ("created", "running"), ("running", "pausing"), ("pausing", "paused"),
    ("pausing", "running"), ("paused", "running"), ("running", "stopping"),
    ("pausing", "stopping"), ("paused", "stopping"), ("stopping", "stopped"),
    ("stopping", "finished"), ("running", "finished"), ("pausing", "finished"),
    ("running", "stopped"), ("stopped", "running"), ("finished", "running"),
    ("running", "failed"), ("pausing", "failed"), ("paused", "failed"), ("stopping", "failed"),
}


# -- data whose batches say what they are --------------------------------------------


class DataError(Exception):
    pass


class ModelError(Exception):
    pass


class CallbackError(Exception):
    pass


def ids_batch(ids, batch_size: int = 4):
    """A batch whose column 0 holds the sample ids (so the loop's input names itself)."""
    ids = np.asarray(ids, dtype="float32")
    x = np.zeros((len(ids), FEATURES), "float32")
    x[:, 0] = ids
    x[:, 1:] = 0.01 * ids[:, None]
    return x, np.ones((len(ids), 1), "float32")


class Ids(nbtrain.Sequence):
    """`n` batches; batch i is made of samples with id i.  Optional delay and failure."""

    def __init__(self, n: int = 6, delay: float = 0.0, fail_at: int | None = None):
        self.n, self.delay, self.fail_at = n, delay, fail_at

    def __len__(self):
        return self.n

    def __getitem__(self, index):
        if index == self.fail_at:
            raise DataError(f"cannot read batch {index}")
        if self.delay:
            time.sleep(self.delay)
        return ids_batch([index] * 4)


class IdsDataset(keras.utils.PyDataset):
    def __init__(self, n: int = 6):
        super().__init__()
        self.n = n

    @property
    def num_batches(self):
        return self.n

    def __getitem__(self, index):
        return ids_batch([index] * 4)


def ids_generator(n: int):
    """Endless: batch k holds id k % n (so each epoch of n steps is one cycle)."""
    k = 0
    while True:
        yield ids_batch([k % n] * 4)
        k += 1


def array_data(samples: int = 24):
    x, y = ids_batch(np.arange(samples))
    return x, y


class Trained:
    """Records, on the training thread, each batch the loop consumes:
    `(epoch, batch, ids)` - what was trained, in order."""

    def __init__(self, run: Run):
        self.rows: list[tuple[int, int, tuple]] = []
        loop, stream = run.loop, run.loop.train_stream
        take = stream.next

        def next_batch():
            item = take()
            ids = tuple(int(v) for v in np.asarray(item[0])[:, 0])
            self.rows.append((loop.state.epoch, loop.state.batch, ids))
            return item

        stream.next = next_batch

    @property
    def pairs(self) -> list[tuple[int, int]]:
        return [(epoch, batch) for epoch, batch, _ in self.rows]

    def ids(self, epoch: int) -> list[int]:
        return [i for e, _, ids in self.rows if e == epoch for i in ids]


class Hook(keras.callbacks.Callback):
    """At `(epoch, batch)`, after the batch: set `reached` and, if `block`, hold the
    training thread until `go` is set (the test acts on the Run meanwhile)."""

    def __init__(self, epoch: int, batch: int, block: bool = True):
        super().__init__()
        self.at, self.block = (epoch, batch), block
        self.reached, self.go = threading.Event(), threading.Event()
        self.epoch = None
        self.times: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        self.times.append(time.monotonic())
        if (self.epoch, batch) == self.at:
            self.reached.set()
            if self.block:
                assert self.go.wait(TIMEOUT)


class Pairs(keras.callbacks.Callback):
    """(epoch, batch) of every `on_train_batch_end`: what callbacks saw trained."""

    def __init__(self):
        super().__init__()
        self.pairs: list[tuple[int, int]] = []
        self.epoch = None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        self.pairs.append((self.epoch, batch))


def expected(first: int, last: int, steps: int, start_batch: int = 0) -> list[tuple[int, int]]:
    pairs = [(e, b) for e in range(first, last) for b in range(steps)]
    return [p for p in pairs if p >= (first, start_batch)]


def states_of(run: Run) -> list[tuple[str, str]]:
    changes: list[tuple[str, str]] = []
    run.add_listener(lambda r, old, new: changes.append((old, new)))
    return changes


def make_run(x, *args, callbacks=(), epochs=2, **kwargs) -> tuple[Run, Trained, Pairs]:
    """A Run (not started) with its recorders."""
    pairs = Pairs()
    model = kwargs.pop("model", None) or make_model()
    run = Run(model, x, *args, epochs=epochs, callbacks=[pairs, *callbacks], **kwargs)
    return run, Trained(run), pairs


def paused_event(run: Run) -> threading.Event:
    """Set when the run says "paused": the loop holds between two batches."""
    event = threading.Event()
    run.add_listener(lambda r, old, new: new == "paused" and event.set())
    return event


def nbtrain_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("nbtrain")]


def assert_clean() -> None:
    assert nbtrain_threads() == []
    assert multiprocessing.active_children() == []


# -- uninterrupted ---------------------------------------------------------------------


def test_fit_returns_at_once_and_trains_every_batch_once():
    model = make_model()
    hook = Hook(0, 0)  # holds the first batch: fit must return while training is held
    start = time.monotonic()
    run = nbtrain.fit(model, Ids(6), epochs=3, callbacks=[hook], display=False)
    elapsed = time.monotonic() - start
    assert elapsed < 1.0
    assert run.state == "running" and isinstance(run, nbtrain.Run)
    assert hook.reached.wait(TIMEOUT)
    hook.go.set()
    history = run.wait(timeout=TIMEOUT)
    assert run.state == "finished" and run.epoch == 3 and run.epochs == 3
    assert history is run.history and history.epoch == [0, 1, 2]
    assert len(history.history["loss"]) == 3
    assert model.history is history
    assert_clean()


@pytest.mark.parametrize("workers", [0, 2])
def test_uninterrupted_exact_pairs(workers):
    run, trained, pairs = make_run(Ids(5), epochs=3, workers=workers, shuffle=False)
    changes = states_of(run)
    run.start().wait(timeout=TIMEOUT)
    assert trained.pairs == pairs.pairs == expected(0, 3, 5)
    assert [trained.ids(e) for e in range(3)] == [[i for i in range(5) for _ in range(4)]] * 3
    assert changes == [("created", "running"), ("running", "finished")]
    assert run.allowed_actions() == {"continue"}


# -- pause / resume --------------------------------------------------------------------


def test_pause_holds_before_next_batch_and_resume_continues():
    hook = Hook(1, 2)
    run, trained, pairs = make_run(Ids(6), callbacks=[hook], epochs=3, workers=2)
    changes = states_of(run)
    held = paused_event(run)
    run.start()
    assert hook.reached.wait(TIMEOUT)
    assert run.pause() is True
    with pytest.warns(RuntimeWarning, match="already pausing"):
        assert run.pause() is False  # already pausing: no-op
    assert run.state == "pausing" and run.allowed_actions() == {"resume", "stop"}
    hook.go.set()
    assert held.wait(TIMEOUT)
    assert run.state == "paused" and run.allowed_actions() == {"resume", "stop"}
    assert trained.pairs == expected(0, 2, 6)[: 6 + 3]  # through (1, 2), nothing after
    assert run.epoch == 1 and run.batch == 3 and run.steps == 6
    assert any(name.startswith("nbtrain-sequence") for name in nbtrain_threads())  # enqueuer alive
    assert run.resume() is True
    run.wait(timeout=TIMEOUT)
    assert trained.pairs == pairs.pairs == expected(0, 3, 6)
    assert changes == [("created", "running"), ("running", "pausing"), ("pausing", "paused"),
                       ("paused", "running"), ("running", "finished")]
    assert_clean()


def test_paused_block_holds_training_and_keeps_epoch_averages():
    """`with run.paused()`: evaluate/predict on the live model mid-epoch; the epoch's
    logs equal those of a run that was never paused (same weights and data)."""
    x_eval, y_eval = ids_batch(np.arange(8))
    reference = make_run(Ids(6), epochs=2, workers=0, shuffle=False)[0].start().wait(timeout=TIMEOUT)

    hook = Hook(0, 3, block=False)
    run, trained, _ = make_run(Ids(6, delay=0.002), callbacks=[hook], epochs=2, workers=0,
                               shuffle=False)
    hook.block = True
    run.start()
    assert hook.reached.wait(TIMEOUT)
    threading.Timer(0.05, hook.go.set).start()  # let the loop go once the block waits
    with run.paused() as same:
        assert same is run and run.state == "paused"
        count = len(trained.rows)
        run.model.evaluate(x_eval, y_eval, verbose=0)
        run.model.predict(x_eval, verbose=0)
        assert len(trained.rows) == count == 4  # nothing trained inside the block
    assert run.state == "running"
    history = run.wait(timeout=TIMEOUT)
    np.testing.assert_allclose(history.history["loss"], reference.history["loss"], rtol=1e-5)
    assert trained.pairs == expected(0, 2, 6)


def test_paused_block_defers_resume_and_stop_until_it_ends():
    hook = Hook(0, 1)
    run, trained, _ = make_run(Ids(6), callbacks=[hook], epochs=2, workers=1)
    run.start()
    assert hook.reached.wait(TIMEOUT)
    threading.Timer(0.01, hook.go.set).start()
    with run.paused():
        assert run.resume() is True  # another thread could do this: the block still holds
        assert run.state == "running"
        assert run.stop() is True
        assert run.state == "stopping"
        assert len(trained.rows) == 2
    run.wait(timeout=TIMEOUT)
    assert run.state == "stopped" and trained.pairs == expected(0, 1, 6)[:2]


def test_paused_block_on_an_ended_run_is_harmless():
    run, _, _ = make_run(Ids(2), epochs=1)
    run.start().wait(timeout=TIMEOUT)
    with run.paused():
        assert run.state == "finished"
    assert run.state == "finished"


# -- stop and exact resume -------------------------------------------------------------


def _sequence(kind: str):
    if kind == "sequence":
        return (Ids(6),), {}
    if kind == "pydataset":
        return (IdsDataset(6),), {}
    if kind == "arrays":
        x, y = array_data(24)
        return (x, y), {"batch_size": 4}
    if kind == "generator":
        return (ids_generator(6),), {"steps_per_epoch": 6}
    if kind == "tf.data":
        import tensorflow as tf

        x, y = array_data(24)
        dataset = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(24, seed=3).batch(4)
        return (dataset,), {}
    raise AssertionError(kind)


STOP_CASES = [
    ("sequence", dict(shuffle=False, workers=2)),
    ("sequence", dict(shuffle=True, workers=2)),
    ("sequence", dict(shuffle=True, workers=0)),
    ("pydataset", dict(shuffle=True, workers=1)),
    ("arrays", dict(shuffle=True, workers=2)),
    ("arrays", dict(shuffle=False, workers=1)),
    ("generator", dict(workers=2)),
    ("generator", dict(workers=0)),
    ("tf.data", dict(workers=1)),
]


@pytest.mark.parametrize("kind,options", STOP_CASES,
                         ids=[f"{k}-{'-'.join(f'{a}={b}' for a, b in o.items())}" for k, o in STOP_CASES])
def test_stop_mid_epoch_then_resume_trains_every_batch_once(kind, options):
    args, kwargs = _sequence(kind)
    hook = Hook(1, 2)
    run, trained, pairs = make_run(*args, callbacks=[hook], epochs=3, **kwargs, **options)
    changes = states_of(run)
    run.start()
    assert hook.reached.wait(TIMEOUT)
    assert run.stop() is True
    with pytest.warns(RuntimeWarning, match="already stopping"):
        assert run.stop() is False  # already stopping
    assert run.state == "stopping" and run.allowed_actions() == set()
    hook.go.set()
    run.wait(timeout=TIMEOUT)
    assert run.state == "stopped" and run.allowed_actions() == {"resume", "continue"}
    assert (run.epoch, run.batch) == (1, 3)
    assert trained.pairs == expected(0, 3, 6)[:9]
    assert run.history.epoch == [0]  # epoch 1 was interrupted: it ends after the resume
    assert_clean()

    assert run.resume() is True
    run.wait(timeout=TIMEOUT)
    assert run.state == "finished"
    assert trained.pairs == pairs.pairs == expected(0, 3, 6)
    every = sorted(trained.ids(0))
    for epoch in range(3):  # each epoch: every sample exactly once
        assert sorted(trained.ids(epoch)) == every
    assert len(set(trained.ids(0))) == (24 if kind in ("arrays", "tf.data") else 6)
    assert run.history.epoch == [0, 1, 2] and len(run.history.history["loss"]) == 3
    assert changes == [("created", "running"), ("running", "stopping"), ("stopping", "stopped"),
                       ("stopped", "running"), ("running", "finished")]
    assert_clean()


def test_stop_resume_with_process_workers():
    if importlib.util.find_spec("nbtrain.data._processes.pool") is None:
        pytest.skip("nbtrain.data._processes.pool (process workers) is not there yet")
    hook = Hook(0, 3)
    run, trained, pairs = make_run(Ids(6), callbacks=[hook], epochs=2, shuffle=True,
                                   workers=2, use_multiprocessing=True)
    run.start()
    assert hook.reached.wait(TIMEOUT)
    run.stop()
    hook.go.set()
    run.wait(timeout=TIMEOUT)
    assert trained.pairs == expected(0, 2, 6)[:4]
    assert_clean()
    run.resume()
    run.wait(timeout=TIMEOUT)
    assert trained.pairs == pairs.pairs == expected(0, 2, 6)
    assert sorted(trained.ids(0)) == sorted(trained.ids(1)) == sorted([i for i in range(6)] * 4)
    assert_clean()


def test_epoch_averages_continue_across_stop_and_resume():
    reference = make_run(Ids(6), epochs=2, workers=0, shuffle=False)[0].start().wait(timeout=TIMEOUT)
    hook = Hook(0, 2)
    run, _, _ = make_run(Ids(6), callbacks=[hook], epochs=2, workers=0, shuffle=False)
    run.start()
    assert hook.reached.wait(TIMEOUT)
    run.stop()
    hook.go.set()
    assert run.wait(timeout=TIMEOUT).epoch == []  # no entry for the interrupted epoch
    run.resume()
    history = run.wait(timeout=TIMEOUT)
    assert history.epoch == [0, 1]
    np.testing.assert_allclose(history.history["loss"], reference.history["loss"], rtol=1e-5)


def test_stop_at_epoch_end_resumes_at_next_epoch():
    hook = Hook(0, 5)  # last batch of epoch 0
    run, trained, _ = make_run(Ids(6), callbacks=[hook], epochs=2)
    run.start()
    assert hook.reached.wait(TIMEOUT)
    run.stop()
    hook.go.set()
    run.wait(timeout=TIMEOUT)
    assert run.state == "stopped" and (run.epoch, run.batch) == (1, 0)
    run.resume()
    run.wait(timeout=TIMEOUT)
    assert trained.pairs == expected(0, 2, 6) and run.history.epoch == [0, 1]


def test_stop_during_last_batch_finishes():
    hook = Hook(1, 5)
    run, _, _ = make_run(Ids(6), callbacks=[hook], epochs=2)
    run.start()
    assert hook.reached.wait(TIMEOUT)
    run.stop()
    hook.go.set()
    run.wait(timeout=TIMEOUT)
    assert run.state == "finished"


def test_resume_with_more_epochs_after_finish_and_after_stop():
    hook = Hook(3, 1)
    run, trained, pairs = make_run(Ids(4), callbacks=[hook], epochs=2)
    run.start()
    run.wait(timeout=TIMEOUT)
    with pytest.warns(RuntimeWarning, match="resume\\(epochs=N\\)"):
        assert run.resume() is False  # finished: nothing more to train
    with pytest.raises(ValueError, match="greater than"):
        run.resume(epochs=2)
    with pytest.raises(ValueError, match="integer"):
        run.resume(epochs=2.5)
    assert run.resume(epochs=5) is True
    assert hook.reached.wait(TIMEOUT)
    run.stop()
    hook.go.set()
    run.wait(timeout=TIMEOUT)
    assert (run.epoch, run.batch) == (3, 2)
    assert run.resume(epochs=np.int64(6)) is True  # stopped: continue and extend
    run.wait(timeout=TIMEOUT)
    assert run.epochs == 6 and run.epoch == 6
    assert trained.pairs == pairs.pairs == expected(0, 6, 4)
    assert run.history.epoch == list(range(6)) and len(run.history.history["loss"]) == 6


def test_resume_epochs_while_running_changes_the_target():
    hook = Hook(0, 1)
    run, trained, _ = make_run(Ids(3), callbacks=[hook], epochs=5)
    run.start()
    assert hook.reached.wait(TIMEOUT)
    assert run.resume(epochs=2) is True  # running: only the target changes
    hook.go.set()
    run.wait(timeout=TIMEOUT)
    assert run.state == "finished" and trained.pairs == expected(0, 2, 3)


def test_initial_epoch():
    run, trained, _ = make_run(Ids(3), epochs=4, initial_epoch=2)
    run.start().wait(timeout=TIMEOUT)
    assert trained.pairs == expected(2, 4, 3) and run.history.epoch == [2, 3]


# -- latency, odd orders ---------------------------------------------------------------


@pytest.mark.parametrize("workers", [0, 2])
def test_stop_latency_is_about_one_batch(workers):
    delay = 0.05
    hook = Hook(0, 4, block=False)
    run, trained, _ = make_run(Ids(1000, delay=delay), callbacks=[hook], epochs=1,
                               workers=workers, max_queue_size=2)
    run.start()
    assert hook.reached.wait(TIMEOUT)
    start = time.monotonic()
    run.stop()
    run.wait(timeout=TIMEOUT)
    latency = time.monotonic() - start
    batch_time = float(np.median(np.diff(hook.times)))
    assert batch_time >= delay * 0.9 if workers == 0 else True
    assert latency < 2 * max(batch_time, delay) + 0.2, (latency, batch_time)
    assert run.state == "stopped" and len(trained.rows) < 10


def test_stop_while_paused():
    hook = Hook(0, 2)
    run, trained, pairs = make_run(Ids(6), callbacks=[hook], epochs=2, workers=2)
    changes = states_of(run)
    held = paused_event(run)
    run.start()
    assert hook.reached.wait(TIMEOUT)
    run.pause()
    hook.go.set()
    assert held.wait(TIMEOUT)
    assert run.stop() is True
    run.wait(timeout=TIMEOUT)
    assert run.state == "stopped" and trained.pairs == expected(0, 2, 6)[:3]
    assert ("paused", "stopping") in changes
    run.resume()
    run.wait(timeout=TIMEOUT)
    assert trained.pairs == pairs.pairs == expected(0, 2, 6)


def test_pause_and_resume_while_stopping_are_no_ops():
    hook = Hook(0, 2)
    run, trained, _ = make_run(Ids(6), callbacks=[hook], epochs=2)
    run.start()
    assert hook.reached.wait(TIMEOUT)
    run.stop()
    with pytest.warns(RuntimeWarning, match="did nothing: the run is (still )?stopping"):
        assert run.pause() is False and run.state == "stopping"
        assert run.resume() is False and run.state == "stopping"
    hook.go.set()
    run.wait(timeout=TIMEOUT)
    assert run.state == "stopped" and len(trained.rows) == 3
    with pytest.warns(RuntimeWarning, match="did nothing: the run is (already )?stopped"):
        assert run.pause() is False and run.stop() is False and run.state == "stopped"


def test_controls_before_start_and_double_start():
    run, _, _ = make_run(Ids(2), epochs=1)
    assert run.state == "created" and run.allowed_actions() == set()
    for control in (run.pause, run.resume, run.stop, run.wait):
        with pytest.raises(RuntimeError, match="start"):
            control()
    run.start()
    with pytest.raises(RuntimeError, match="already started"):
        run.start()
    run.wait(timeout=TIMEOUT)


def test_wait_timeout_while_paused():
    hook = Hook(0, 0)
    run, _, _ = make_run(Ids(4), callbacks=[hook], epochs=1)
    run.start()
    assert hook.reached.wait(TIMEOUT)
    run.pause()
    hook.go.set()
    with pytest.raises(TimeoutError):
        run.wait(timeout=0.05)
    run.resume()
    run.wait(timeout=TIMEOUT)
    assert run.state == "finished"


def test_controls_from_the_training_thread():
    class StopAt(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 1:
                run.stop()
                with pytest.raises(RuntimeError):
                    run.wait()

    run, trained, _ = make_run(Ids(4), callbacks=[StopAt()], epochs=1)
    run.start().wait(timeout=TIMEOUT)
    assert run.state == "stopped" and len(trained.rows) == 2


def test_resume_from_a_listener_on_stopped():
    """A listener runs on the training thread and may start the next pass itself."""
    hook = Hook(0, 1, block=False)
    run, trained, _ = make_run(Ids(4), callbacks=[hook], epochs=2)
    done = threading.Event()

    def listener(r, old, new):
        if new == "stopped":
            r.resume()
        if new == "finished":
            done.set()

    run.add_listener(listener)
    hook.block = True
    run.start()
    assert hook.reached.wait(TIMEOUT)
    run.stop()
    hook.go.set()
    assert done.wait(TIMEOUT)
    run.wait(timeout=TIMEOUT)
    assert trained.pairs == expected(0, 2, 4)


# -- many threads, random orders -------------------------------------------------------


def _steer(run: Run, seed: float, errors: list) -> None:
    """Six random controls with random gaps, as a user or a dashboard might."""
    r = random.Random(seed)
    x_eval, y_eval = ids_batch(np.arange(4))
    try:
        for _ in range(6):
            action = r.choice(["pause", "resume", "stop", "more", "block", "look"])
            if action == "pause":
                run.pause()
            elif action == "resume":
                run.resume()
            elif action == "stop":
                run.stop()
            elif action == "more" and run.epochs < 4:
                run.resume(epochs=run.epochs + 1)
            elif action == "block":
                with run.paused():
                    if r.random() < 0.1:
                        run.model.evaluate(x_eval, y_eval, verbose=0)
            else:
                run.allowed_actions(), run.epoch, run.batch, run.steps, repr(run)
            time.sleep(r.random() * 0.004)
    except BaseException as exc:  # noqa: BLE001 - reported by the test
        errors.append(exc)


def test_random_control_sequences_from_two_threads():
    rng = random.Random(1234)
    model = make_model()
    for trial in range(100):
        workers = rng.choice([0, 1, 2])
        shuffle = rng.random() < 0.5
        run, trained, pairs = make_run(Ids(5, delay=0.001), model=model, epochs=2,
                                       workers=workers, shuffle=shuffle)
        changes = states_of(run)
        errors: list[BaseException] = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # resume of a finished run
            run.start()
            threads = [threading.Thread(target=_steer, args=(run, rng.random(), errors))
                       for _ in range(2)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(TIMEOUT)
            assert not errors, (trial, errors)
            for _ in range(20):  # drive the run to its end
                if run.state == "finished":
                    break
                if run.state in ("pausing", "paused", "stopped"):
                    run.resume()
                else:
                    run.wait(timeout=TIMEOUT)
        assert run.state == "finished", (trial, run.state, changes)
        assert trained.pairs == pairs.pairs == expected(0, run.epochs, 5), trial
        for epoch in range(run.epochs):
            assert sorted(trained.ids(epoch)) == sorted(i for i in range(5) for _ in range(4))
        assert run.history.epoch == list(range(run.epochs))
        assert len(run.history.history["loss"]) == run.epochs
        assert all(change in VALID for change in changes), (trial, changes)
        assert all(a[1] == b[0] for a, b in zip(changes, changes[1:])), (trial, changes)
        assert changes[-1][1] == "finished"
        assert_clean()


# -- failures --------------------------------------------------------------------------


class Explode(keras.layers.Layer):
    def call(self, inputs, training=None):
        if training:
            raise ModelError("the model cannot take this")
        return inputs


class FailAtEpochEnd(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:
            raise CallbackError("callback broke")


def _failing(kind):
    if kind == "data":
        return make_run(Ids(6, fail_at=3), epochs=2, workers=2, shuffle=False)
    if kind == "generator":
        def broken():
            yield ids_batch([0] * 4)
            raise DataError("the generator broke")
        return make_run(broken(), epochs=1, steps_per_epoch=4, workers=1)
    if kind == "model":
        model = keras.Sequential([keras.Input((FEATURES,)), Explode(), keras.layers.Dense(1)])
        model.compile("sgd", "mse")
        return make_run(Ids(6), epochs=2, model=model)
    if kind == "callback":
        return make_run(Ids(6), epochs=3, callbacks=[FailAtEpochEnd()], workers=2)
    raise AssertionError(kind)


FAILURES = {"data": DataError, "generator": DataError, "model": ModelError,
            "callback": CallbackError}


@pytest.mark.parametrize("kind", list(FAILURES))
def test_failure_ends_in_failed_with_the_original_exception(kind):
    run, trained, _ = _failing(kind)
    changes = states_of(run)
    run.start()
    with pytest.raises(FAILURES[kind]) as info:
        run.wait(timeout=TIMEOUT)
    resumable = kind in ("data", "callback")  # a Sequence's data, a callback: resumable
    assert run.state == "failed" and run.resumable is resumable
    assert run.allowed_actions() == ({"resume"} if resumable else set())
    assert run.exception is info.value and run.exception.__traceback__ is not None
    assert info.value.__notes__[-1] == run.failure.line()  # the one line, as a note
    assert changes[-1] == ("running", "failed")
    assert_clean()  # enqueuers stopped, thread joined
    with pytest.raises(FAILURES[kind]):  # again: same exception, still raised
        run.wait()
    assert info.value.__notes__.count(run.failure.line()) == 1
    if not resumable:
        with pytest.raises(RuntimeError, match="cannot be resumed"):
            run.resume()
    with pytest.warns(RuntimeWarning, match="did nothing: the run failed"):
        assert run.pause() is False and run.stop() is False
    if kind == "data":
        assert trained.pairs == expected(0, 1, 6)[:3]
        frames = []
        tb = info.value.__traceback__
        while tb is not None:
            frames.append(tb.tb_frame.f_code.co_name)
            tb = tb.tb_next
        assert "__getitem__" in frames  # the original traceback, down to the data


def test_failure_while_a_paused_block_waits():
    run, _, _ = make_run(Ids(6, fail_at=0), epochs=1, workers=0)
    run.start()
    with run.paused():  # returns once the pass has failed: it never reaches the gate
        pass
    with pytest.raises(DataError):
        run.wait(timeout=TIMEOUT)


# -- Ctrl-C ----------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["signal", "interrupt_main"])
def test_keyboard_interrupt_during_wait_stops_cleanly(how):
    assert threading.current_thread() is threading.main_thread()
    hook = Hook(0, 3, block=False)
    run, trained, _ = make_run(Ids(500, delay=0.005), callbacks=[hook], epochs=50, workers=2)
    run.start()
    main = threading.main_thread().ident

    def interrupt():
        hook.reached.wait(TIMEOUT)
        if how == "signal":
            signal.pthread_kill(main, signal.SIGINT)
        else:
            _thread.interrupt_main()

    interrupter = threading.Thread(target=interrupt)
    interrupter.start()
    with pytest.raises(KeyboardInterrupt):
        run.wait()
    interrupter.join()
    assert run.state in ("stopping", "stopped")  # control came back within INTERRUPT_WAIT
    run.wait(timeout=TIMEOUT)
    assert run.state == "stopped"
    assert_clean()  # enqueuers ended, training thread joined
    assert run.history.epoch == [] and len(trained.rows) >= 4  # an interrupted epoch: no entry
    assert trained.pairs == expected(0, 1, 500)[: len(trained.rows)]


# -- refusals --------------------------------------------------------------------------


def test_a_model_trains_in_one_run_at_a_time():
    hook = Hook(0, 0)
    run, _, _ = make_run(Ids(3), callbacks=[hook], epochs=1)
    run.start()
    assert hook.reached.wait(TIMEOUT)
    with pytest.raises(RuntimeError, match="already training"):
        nbtrain.fit(run.model, Ids(3), display=False)
    other = Run(make_model(), Ids(3))  # another model is fine
    hook.go.set()
    run.wait(timeout=TIMEOUT)
    second = nbtrain.fit(run.model, Ids(3), epochs=2, display=False)  # ended: allowed
    second.wait(timeout=TIMEOUT)
    del other

    hook2 = Hook(0, 0)
    first, _, _ = make_run(Ids(3), callbacks=[hook2], epochs=2)
    first.start()
    assert hook2.reached.wait(TIMEOUT)
    first.stop()
    hook2.go.set()
    first.wait(timeout=TIMEOUT)
    hook3 = Hook(0, 0)
    busy = nbtrain.fit(first.model, Ids(3), callbacks=[hook3], display=False)
    assert hook3.reached.wait(TIMEOUT)
    with pytest.raises(RuntimeError, match="already training"):
        first.resume()  # the stopped run may not resume while another trains the model
    assert first.state == "stopped"
    hook3.go.set()
    busy.wait(timeout=TIMEOUT)


def _tf_unknown_cardinality():
    import tensorflow as tf

    x, y = array_data(8)
    return tf.data.Dataset.from_tensor_slices((x, y)).filter(lambda a, b: True).batch(4)


BAD = [
    ("generator without steps", lambda m: (m, ids_generator(3)), {}, ValueError, "steps_per_epoch"),
    ("validation generator without steps", lambda m: (m, Ids(3)),
     {"validation_data": ids_generator(3)}, ValueError, "validation_steps"),
    ("uncompiled", lambda m: (keras.Sequential([keras.Input((FEATURES,)), keras.layers.Dense(1)]),
                              Ids(3)), {}, ValueError, "compile"),
    ("y with a Sequence", lambda m: (m, Ids(3), np.zeros(3)), {}, ValueError, "y"),
    ("batch_size with a Sequence", lambda m: (m, Ids(3)), {"batch_size": 4}, ValueError,
     "batch_size"),
    ("y with a string", lambda m: (m, "data", np.zeros(3)), {}, TypeError, "NumPy"),
    ("x None", lambda m: (m, None), {}, TypeError, "generator"),
    ("x and y lengths", lambda m: (m, np.zeros((5, FEATURES)), np.zeros((4, 1))), {}, ValueError,
     "samples"),
    ("bad batch_size", lambda m: (m, np.zeros((5, FEATURES)), np.zeros((5, 1))),
     {"batch_size": 0}, ValueError, "batch_size"),
    ("epochs", lambda m: (m, Ids(3)), {"epochs": -1}, ValueError, "epochs"),
    ("workers", lambda m: (m, Ids(3)), {"workers": -1}, ValueError, "workers"),
    ("validation tuple", lambda m: (m, Ids(3)), {"validation_data": (1, 2, 3, 4)}, ValueError,
     "validation_data"),
    ("dataset of unknown length", lambda m: (m, _tf_unknown_cardinality()), {}, ValueError,
     "steps_per_epoch"),
    ("dataset with processes", lambda m: (m, _tf_unknown_cardinality()),
     {"use_multiprocessing": True, "steps_per_epoch": 2}, ValueError, "use_multiprocessing"),
    ("callback type", lambda m: (m, Ids(3)), {"callbacks": [print]}, TypeError, "Callback"),
    ("display", lambda m: (m, Ids(3)), {"display": "yes"}, ValueError, "display"),
]


@pytest.mark.parametrize("name,args,kwargs,error,match", BAD, ids=[b[0] for b in BAD])
def test_bad_input_is_refused_before_any_thread_starts(name, args, kwargs, error, match):
    model = make_model()
    before = set(threading.enumerate())
    with pytest.raises(error, match=match):
        nbtrain.fit(*args(model), **kwargs)
    assert set(threading.enumerate()) == before
    nbtrain.fit(model, Ids(2), display=False).wait(timeout=TIMEOUT)  # the model is not held


# -- data forms, validation ------------------------------------------------------------


def test_validation_in_every_form_and_tf_data_steps():
    import tensorflow as tf

    x, y = array_data(16)
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(4)
    for validation, steps in [((x, y), None), (Ids(2), None), (ids_generator(2), 2),
                              (dataset, None), (IdsDataset(2), None)]:
        run = nbtrain.fit(make_model(), dataset, epochs=2, validation_data=validation,
                          validation_steps=steps, display=False)
        history = run.wait(timeout=TIMEOUT)
        assert run.steps == 4
        assert len(history.history["val_loss"]) == 2, validation


def test_validation_generator_loses_no_item_across_stop_and_resume():
    served: list[int] = []

    def validation():
        k = 0
        while True:
            served.append(k)
            yield ids_batch([k] * 4)
            k += 1

    hook = Hook(1, 1)
    run, _, _ = make_run(Ids(3), callbacks=[hook], epochs=4, workers=2, max_queue_size=4,
                         validation_data=validation(), validation_steps=2)
    seen: list[int] = []
    make_stream = run.loop.validation_stream

    def recording_stream():
        stream = make_stream()
        if not getattr(stream, "_recorded", False):
            take = stream.next

            def next_batch():
                item = take()
                seen.append(int(np.asarray(item[0])[0, 0]))
                return item

            stream.next, stream._recorded = next_batch, True
        return stream

    run.loop.validation_stream = recording_stream
    run.start()
    assert hook.reached.wait(TIMEOUT)
    run.stop()
    hook.go.set()
    run.wait(timeout=TIMEOUT)
    run.resume()
    run.wait(timeout=TIMEOUT)
    # validations after epochs 0, 1 (completed after the resume), 2, 3: items consumed in
    # order, none lost; the stopped partial epoch is not validated (Keras 2)
    assert seen == list(range(len(seen))) and len(seen) == 8


def test_tf_data_reshuffles_each_epoch_and_respects_steps_per_epoch():
    import tensorflow as tf

    x, y = array_data(16)
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(16).batch(4)
    run, trained, _ = make_run(dataset, epochs=3)
    run.start().wait(timeout=TIMEOUT)
    orders = [trained.ids(e) for e in range(3)]
    assert all(sorted(o) == list(range(16)) for o in orders)
    assert len({tuple(o) for o in orders}) > 1
    forever = tf.data.Dataset.from_tensor_slices((x, y)).batch(4).repeat()
    run, trained, _ = make_run(forever, epochs=2, steps_per_epoch=3)
    run.start().wait(timeout=TIMEOUT)
    assert trained.pairs == expected(0, 2, 3)


def test_arrays_shuffle_per_epoch_and_multi_input():
    x, y = array_data(12)
    run, trained, _ = make_run(x, y, batch_size=4, epochs=3, shuffle=True)
    run.start().wait(timeout=TIMEOUT)
    orders = [trained.ids(e) for e in range(3)]
    assert all(sorted(o) == list(range(12)) for o in orders) and len({tuple(o) for o in orders}) > 1
    run, trained, _ = make_run(x, y, batch_size=5, epochs=1, shuffle=False)
    run.start().wait(timeout=TIMEOUT)
    assert trained.ids(0) == list(range(12)) and [len(r[2]) for r in trained.rows] == [5, 5, 2]

    a, b = keras.Input((2,), name="a"), keras.Input((3,), name="b")
    model = keras.Model([a, b], keras.layers.Dense(1)(keras.layers.Concatenate()([a, b])))
    model.compile("sgd", "mse")
    xs = {"a": np.zeros((10, 2), "float32"), "b": np.ones((10, 3), "float32")}
    history = nbtrain.fit(model, xs, np.zeros((10, 1)), batch_size=4, epochs=2,
                          validation_data=(xs, np.zeros((10, 1))), display=False).wait()
    assert len(history.history["val_loss"]) == 2


# -- listeners, history, display -------------------------------------------------------


def test_listeners_get_every_change_and_their_errors_never_break_the_run():
    hook = Hook(0, 1)
    run, trained, _ = make_run(Ids(4), callbacks=[hook], epochs=1)
    seen: list = []

    def broken(r, old, new):
        raise ZeroDivisionError("listener bug")

    remove_broken = run.add_listener(broken)
    remove = run.add_listener(lambda r, old, new: seen.append((old, new, threading.current_thread().name)))
    with pytest.warns(RuntimeWarning, match="listener bug"):
        run.start()
        assert hook.reached.wait(TIMEOUT)
        run.pause()
        run.resume()
        hook.go.set()
        run.wait(timeout=TIMEOUT)
    assert [(o, n) for o, n, _ in seen] == [("created", "running"), ("running", "pausing"),
                                           ("pausing", "running"), ("running", "finished")]
    assert seen[-1][2].startswith("nbtrain-run-pass")  # made by the training thread
    assert run.state == "finished" and len(trained.rows) == 4
    remove()
    remove()
    remove_broken()
    run.resume(epochs=2)
    run.wait(timeout=TIMEOUT)
    assert len(seen) == 4
    with pytest.raises(TypeError):
        run.add_listener("not callable")


def test_add_callback_only_between_passes():
    hook = Hook(0, 0)
    run = Run(make_model(), Ids(2), epochs=1)
    pairs = Pairs()
    run.add_callback(pairs)
    run.add_callback(hook)
    with pytest.raises(TypeError):
        run.add_callback(print)
    run.start()
    assert hook.reached.wait(TIMEOUT)
    with pytest.raises(RuntimeError, match="pass"):
        run.add_callback(Pairs())
    hook.go.set()
    run.wait(timeout=TIMEOUT)
    assert pairs.pairs == [(0, 0), (0, 1)]


def test_run_history_replaces_and_never_resets():
    history = RunHistory()
    history.set_model(make_model())
    history.on_train_begin()
    history.on_epoch_end(0, {"loss": 3.0})
    history.on_epoch_end(1, {"loss": 2.0, "val_loss": 2.5})  # partial epoch 1
    history.on_train_begin()  # a resume
    history.on_epoch_end(1, {"val_loss": 9.0})  # no training metric: ignored
    history.on_epoch_end(1, {"loss": 1.5, "val_loss": 1.8})  # epoch 1 completed
    history.on_epoch_end(2, {"loss": 1.0})
    assert history.epoch == [0, 1, 2]
    assert history.history == {"loss": [3.0, 1.5, 1.0], "val_loss": [1.8]}


def test_display_choices(monkeypatch, capsys):
    assert not in_notebook()
    run = Run(make_model(), Ids(2), epochs=1)
    assert attach_display(run, False) is None
    status = attach_display(run, None)  # not a notebook: plain text
    assert isinstance(status, TextStatus)
    run.start().wait(timeout=TIMEOUT)
    assert "Epoch 1/1 - loss:" in capsys.readouterr().out

    from nbtrain.dashboard import Dashboard

    made: list = []

    def for_run(cls, r):
        made.append(r)
        return cls(auto_display=False)

    monkeypatch.setattr(Dashboard, "for_run", classmethod(for_run))
    run = nbtrain.fit(make_model(), Ids(2), display=True)
    assert made == [run]
    run.wait(timeout=TIMEOUT)
    monkeypatch.setattr("nbtrain.dashboard.notebook.in_notebook", lambda: True)
    run = nbtrain.fit(make_model(), Ids(2))
    assert made[-1] is run
    run.wait(timeout=TIMEOUT)
    # a Dashboard the user passed in `callbacks` is the one bound and shown
    mine = Dashboard(auto_display=False)
    run = nbtrain.fit(make_model(), Ids(2), callbacks=[mine])
    assert mine.run is run and made[-1] is not run
    run.wait(timeout=TIMEOUT)


def test_text_status_lines(capsys):
    hook = Hook(0, 1)
    run, _, _ = make_run(Ids(4), callbacks=[hook], epochs=2)
    TextStatus.for_run(run)
    run.start()
    assert hook.reached.wait(TIMEOUT)
    run.stop()
    hook.go.set()
    run.wait(timeout=TIMEOUT)
    out = capsys.readouterr().out.splitlines()
    # a stop is an interruption, not an epoch end: no epoch line until a resume ends it
    assert out == ["nbtrain: stopping at epoch 1/2, batch 2/4",
                   "nbtrain: stopped at epoch 1/2, batch 2/4"]
    assert repr(run) == "<nbtrain.Run stopped epoch 1/2 batch 2/4>"


def test_repr_of_a_finished_run_shows_its_last_epoch_complete():
    run, _, _ = make_run(Ids(4), epochs=2)
    assert repr(run) == "<nbtrain.Run created epoch 1/2 batch 0/4>"
    run.start()
    run.wait(timeout=TIMEOUT)
    assert (run.epoch, run.batch) == (2, 0)  # past the last epoch, at no batch of a third
    assert repr(run) == "<nbtrain.Run finished epoch 2/2 batch 4/4>"


def test_import_nbtrain_stays_light():
    code = ("import sys, nbtrain, nbtrain.data; assert 'tensorflow' not in sys.modules; "
            "assert 'keras' not in sys.modules; assert {'fit', 'Run'} <= set(dir(nbtrain)); "
            "assert nbtrain.Run.__name__ == 'Run' and callable(nbtrain.fit)")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_interpreter_exit_stops_a_running_run_cleanly():
    code = """
import os, sys, time
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
sys.path[:0] = [{here!r}, {tests!r}]
import nbtrain
from helpers import make_model
from test_run import Ids
run = nbtrain.fit(make_model(), Ids(10_000, delay=0.01), epochs=100, workers=2, display=False)
run.add_listener(lambda r, old, new: print(old, "->", new, flush=True))
while run.batch < 3:
    time.sleep(0.01)
print("exiting", run.state, flush=True)
"""
    import pathlib

    here = pathlib.Path(__file__).parent
    tests, here = str(here.parent), str(here)
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-c", code.format(here=here, tests=tests)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines() == ["exiting running", "running -> stopping",
                                        "stopping -> stopped"]  # a clean stop, not a failure
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    assert time.monotonic() - start < 60


def test_a_thread_that_cannot_start_fails_the_run(monkeypatch):
    run, _, _ = make_run(Ids(2), epochs=1)

    def refuse(self):
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", refuse)
    with pytest.raises(RuntimeError, match="new thread"):
        run.start()
    monkeypatch.undo()
    assert run.state == "failed"
    with pytest.raises(RuntimeError, match="new thread"):
        run.wait(timeout=1)
    nbtrain.fit(run.model, Ids(2), display=False).wait(timeout=TIMEOUT)  # model released
