"""Every Keras backend: the backend's step runner gives `model.fit`'s numbers, and
pausing, stopping, resuming, callbacks and failures leave the model as a user
expects to find it.

These run under whatever `KERAS_BACKEND` is set (`make test` runs them under
tensorflow, jax and torch).  Synchronisation is by events set from callbacks on
the training thread, never by sleeping.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import warnings

import keras
import numpy as np
import pytest

import nbtrain
from nbtrain.engine.steps import BatchSteps, make_steps

BACKEND = keras.backend.backend()
TIMEOUT = 60
BATCH = 8
STEPS = 6  # batches per epoch


def data(n: int = BATCH * STEPS, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 4)).astype("float32")
    y = (x @ np.array([[1.0], [-2.0], [0.5], [3.0]], "float32")
         + 0.1 * rng.standard_normal((n, 1))).astype("float32")
    return x, y


def model(**compile_kwargs) -> keras.Model:
    """The same initial weights at every call (an MLP, Adam: every kind of state)."""
    keras.utils.set_random_seed(3)
    m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"),
                          keras.layers.Dense(1)])
    m.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse", metrics=["mae"],
              **compile_kwargs)
    return m


def assert_same_weights(a: keras.Model, b: keras.Model) -> None:
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_allclose(wa, wb, rtol=1e-6, atol=1e-7)


def assert_same_history(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_allclose(a[key], b[key], rtol=1e-6, atol=1e-7, err_msg=key)


class Control(keras.callbacks.Callback):
    """Calls `action()` after batch `at` of epoch `epoch` (on the training thread)."""

    def __init__(self, epoch: int, at: int, action):
        super().__init__()
        self.epoch, self.at, self.action = epoch, at, action
        self.current = -1
        self.done = threading.Event()

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.current == self.epoch and batch == self.at and not self.done.is_set():
            self.action()
            self.done.set()


def paused_event(run) -> threading.Event:
    event = threading.Event()
    run.add_listener(lambda r, old, new: new == "paused" and event.set())
    return event


def test_the_backends_own_runner_is_used():
    fast = {"tensorflow": "CompiledSteps", "jax": "JaxSteps", "torch": "TorchSteps"}[BACKEND]
    m = model()
    assert type(make_steps(m, "train")).__name__ == fast
    assert type(make_steps(m, "test")).__name__ == fast
    assert isinstance(make_steps(m, "train", compiled=False), BatchSteps)


@pytest.mark.parametrize("workers", [0, 1])
def test_weights_and_logs_equal_model_fit(workers):
    x, y = data()
    vx, vy = data(16, seed=1)
    reference = model()
    expected = reference.fit(x, y, batch_size=BATCH, epochs=3, shuffle=False, verbose=0,
                             validation_data=(vx, vy))
    trained = model()
    history = nbtrain.fit(trained, x, y, batch_size=BATCH, epochs=3, shuffle=False,
                          validation_data=(vx, vy), workers=workers, display=False
                          ).wait(timeout=TIMEOUT)
    assert_same_history(history.history, expected.history)
    assert_same_weights(trained, reference)


def test_fit_generator_and_evaluate_generator_equal_keras():
    x, y = data()
    sequence = nbtrain.data.ArraySequence(x, y, batch_size=BATCH, shuffle=False)
    reference, trained = model(), model()
    expected = reference.fit(x, y, batch_size=BATCH, epochs=2, shuffle=False, verbose=0)
    history = nbtrain.fit_generator(trained, sequence, epochs=2, shuffle=False, verbose=0)
    assert_same_history(history.history, expected.history)
    assert_same_weights(trained, reference)
    np.testing.assert_allclose(nbtrain.evaluate_generator(trained, sequence),
                               reference.evaluate(x, y, batch_size=BATCH, verbose=0),
                               rtol=1e-6)


class BatchEnds(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.batches: list[int] = []

    def on_train_batch_end(self, batch, logs=None):
        self.batches.append(batch)


def test_steps_per_execution():
    x, y = data()
    reference = model(steps_per_execution=4)
    if BACKEND == "torch":  # Keras's PyTorch trainer refuses it, in fit as here
        with pytest.raises(ValueError, match="steps_per_execution"):
            reference.fit(x, y, batch_size=BATCH, verbose=0)
        with pytest.raises(ValueError, match="steps_per_execution"):
            nbtrain.fit(model(steps_per_execution=4), x, y, batch_size=BATCH,
                        display=False).wait(timeout=TIMEOUT)
        return
    seen, expected_seen = BatchEnds(), BatchEnds()
    expected = reference.fit(x, y, batch_size=BATCH, epochs=2, shuffle=False, verbose=0,
                             callbacks=[expected_seen])
    trained = model(steps_per_execution=4)
    history = nbtrain.fit(trained, x, y, batch_size=BATCH, epochs=2, shuffle=False,
                          callbacks=[seen], display=False).wait(timeout=TIMEOUT)
    # The batch indices are the batches trained (Keras's fit says 7 for the last
    # call of a 6-batch epoch, as if it had been a full one).
    assert seen.batches == [3, 5, 3, 5] and expected_seen.batches[::2] == [3, 3]
    assert_same_history(history.history, expected.history)
    assert_same_weights(trained, reference)


def test_paused_model_holds_the_weights_trained_so_far_and_resume_ends_as_fit():
    """Inside `run.paused()` (and once "paused") the model's weights are those of
    the batches trained so far, and a change made there is what training goes on with."""
    x, y = data()
    after_4 = model()
    after_4.fit(x[:4 * BATCH], y[:4 * BATCH], batch_size=BATCH, shuffle=False, verbose=0)
    trained = model()
    holder: dict = {}
    pause = Control(0, 3, lambda: holder["run"].pause())
    run = holder["run"] = nbtrain.fit(trained, x, y, batch_size=BATCH, epochs=2,
                                      shuffle=False, callbacks=[pause], display=False)
    held = paused_event(run)
    assert held.wait(TIMEOUT)
    assert (run.epoch, run.batch) == (0, 4)
    assert_same_weights(trained, after_4)  # read without a paused() block: synced at the hold
    with run.paused():
        assert_same_weights(trained, after_4)
        frozen = trained.get_weights()
        trained.optimizer.learning_rate.assign(0.0)  # a live change, made while held
    run.resume()
    run.wait(timeout=TIMEOUT)
    for before, after in zip(frozen, trained.get_weights(), strict=True):
        np.testing.assert_array_equal(before, after)  # trained on with learning rate 0


def test_stop_mid_epoch_and_resume_end_as_an_uninterrupted_fit():
    x, y = data()
    reference = model()
    expected = reference.fit(x, y, batch_size=BATCH, epochs=2, shuffle=False, verbose=0)
    trained = model()
    holder: dict = {}
    stop = Control(1, 2, lambda: holder["run"].stop())
    run = holder["run"] = nbtrain.fit(trained, x, y, batch_size=BATCH, epochs=2,
                                      shuffle=False, callbacks=[stop], display=False)
    run.wait(timeout=TIMEOUT)
    assert run.state == "stopped" and (run.epoch, run.batch) == (1, 3)
    trained.get_weights()  # readable while stopped (synced at the stop)
    run.resume()
    history = run.wait(timeout=TIMEOUT)
    assert run.state == "finished"
    assert_same_history(history.history, expected.history)
    assert_same_weights(trained, reference)


class ReadsWeights(keras.callbacks.Callback):
    """Reads the model's weights through `self.model` at every batch (what a
    checkpointing callback does), and changes the learning rate at batch 2."""

    def __init__(self):
        super().__init__()
        self.sums: list[float] = []

    def on_train_batch_end(self, batch, logs=None):
        self.sums.append(float(sum(w.sum() for w in self.model.get_weights())))
        if batch == 2:
            self.model.optimizer.learning_rate.assign(0.001)


def test_callbacks_reading_and_changing_the_model_between_batches_see_what_fit_shows():
    x, y = data()
    reference, trained = model(), model()
    expected_reads, reads = ReadsWeights(), ReadsWeights()
    expected = reference.fit(x, y, batch_size=BATCH, epochs=2, shuffle=False, verbose=0,
                             callbacks=[expected_reads])
    history = nbtrain.fit(trained, x, y, batch_size=BATCH, epochs=2, shuffle=False,
                          callbacks=[reads], display=False).wait(timeout=TIMEOUT)
    np.testing.assert_allclose(reads.sums, expected_reads.sums, rtol=1e-6)
    assert_same_history(history.history, expected.history)
    assert_same_weights(trained, reference)


class FailsAt(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        if batch == 3:
            raise RuntimeError("callback failed")


def test_a_failure_leaves_the_weights_of_the_batches_trained():
    x, y = data()
    reference, trained = model(), model()
    with pytest.raises(RuntimeError, match="callback failed"):
        reference.fit(x, y, batch_size=BATCH, shuffle=False, verbose=0, callbacks=[FailsAt()])
    run = nbtrain.fit(trained, x, y, batch_size=BATCH, shuffle=False, callbacks=[FailsAt()],
                      display=False)
    with pytest.raises(RuntimeError, match="callback failed"):
        run.wait(timeout=TIMEOUT)
    assert run.state == "failed"
    assert_same_weights(trained, reference)


@pytest.mark.skipif(BACKEND != "torch", reason="train()/eval() are PyTorch module modes")
def test_torch_modes_are_those_of_fit():
    class Modes(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.modes: list = []

        def on_train_batch_end(self, batch, logs=None):
            self.modes.append(("train", self.model.training))

        def on_test_batch_end(self, batch, logs=None):
            self.modes.append(("test", self.model.training))

    x, y = data(4 * BATCH)
    reference, trained = model(), model()
    expected, seen = Modes(), Modes()
    reference.fit(x, y, batch_size=BATCH, epochs=2, validation_data=(x, y), verbose=0,
                  callbacks=[expected])
    nbtrain.fit(trained, x, y, batch_size=BATCH, epochs=2, validation_data=(x, y),
                callbacks=[seen], display=False).wait(timeout=TIMEOUT)
    assert seen.modes == expected.modes
    assert trained.training is reference.training is False


@pytest.mark.skipif(BACKEND != "jax", reason="keras.distribution is JAX's")
def test_jax_with_a_distribution_set_falls_back_to_train_on_batch():
    import jax

    x, y = data()
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=jax.devices()))
    try:
        reference, trained = model(), model()
        assert isinstance(make_steps(trained, "train"), BatchSteps)
        expected = reference.fit(x, y, batch_size=BATCH, epochs=2, shuffle=False, verbose=0)
        history = nbtrain.fit(trained, x, y, batch_size=BATCH, epochs=2, shuffle=False,
                              display=False).wait(timeout=TIMEOUT)
    finally:
        keras.distribution.set_distribution(None)
    assert_same_history(history.history, expected.history)
    assert_same_weights(trained, reference)


@pytest.mark.skipif(BACKEND == "tensorflow", reason="the TensorFlow backend is TensorFlow")
def test_nbtrain_never_imports_tensorflow_on_this_backend():
    """Training, pausing, stopping and resuming through nbtrain, with thread and
    process workers, loads no TensorFlow (checked in a fresh interpreter)."""
    script = textwrap.dedent("""
        import sys, threading
        import keras, numpy as np
        import nbtrain
        x = np.ones((64, 4), "float32"); y = np.ones((64, 1), "float32")
        m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
        m.compile("adam", "mse")
        run = {}
        class Pause(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                if batch == 2 and "paused" not in run:
                    run["paused"] = True
                    run["run"].stop()
        run["run"] = nbtrain.fit(m, x, y, batch_size=8, epochs=2, callbacks=[Pause()],
                                 display=False)
        run["run"].wait()
        run["run"].resume()
        run["run"].wait()
        nbtrain.fit_generator(m, nbtrain.data.ArraySequence(x, y, batch_size=8), workers=2,
                              use_multiprocessing=True, verbose=0)
        nbtrain.evaluate_generator(m, nbtrain.data.ArraySequence(x, y, batch_size=8))
        print(sorted(name for name in sys.modules if name.split(".")[0] == "tensorflow"))
    """)
    env = {**os.environ, "KERAS_BACKEND": BACKEND, "NBTRAIN_LIGHT_KERAS": "1"}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                         text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


class BadBatchAt(nbtrain.Sequence):
    """Batches of `x, y`; batch `at` has a feature too many (the step fails on it)."""

    def __init__(self, x, y, at: int):
        self.x, self.y, self.at = x, y, at

    def __len__(self):
        return len(self.x) // BATCH

    def __getitem__(self, i):
        s = slice(i * BATCH, (i + 1) * BATCH)
        if i == self.at:
            return np.concatenate([self.x[s], self.x[s, :1]], axis=1), self.y[s]
        return self.x[s], self.y[s]


def test_a_step_that_fails_leaves_the_weights_of_the_batches_before_it():
    x, y = data()
    after_3 = model()
    after_3.fit(x[:3 * BATCH], y[:3 * BATCH], batch_size=BATCH, shuffle=False, verbose=0)
    trained = model()
    with pytest.raises(Exception):  # noqa: B017 - each backend words its shape error its own way
        nbtrain.fit_generator(trained, BadBatchAt(x, y, at=3), shuffle=False, verbose=0,
                              workers=0)
    assert_same_weights(trained, after_3)


def test_reading_the_learning_rate_warns_nothing():
    """The dashboard and steering read the optimizer's rate a few times a second; under
    NumPy 2, `keras.ops.convert_to_numpy` warns at every read (`__array__` without a
    copy keyword), which the dashboard, showing the training's warnings, showed."""
    from nbtrain.dashboard.liveplot import learning_rate_of
    from nbtrain.engine.hyperparameters import read_hyperparameter

    x, y = data()
    plain, scheduled = model(), model()
    scheduled.compile(optimizer=keras.optimizers.Adam(
        keras.optimizers.schedules.ExponentialDecay(0.01, 1, 0.5)), loss="mse")
    for m in (plain, scheduled):
        m.fit(x, y, batch_size=BATCH, verbose=0)  # the optimizer built, 6 steps taken
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_hyperparameter(plain.optimizer, "learning_rate") == pytest.approx(0.01)
        assert learning_rate_of(plain) == pytest.approx(0.01)
        assert learning_rate_of(scheduled) == pytest.approx(0.01 * 0.5**STEPS)


def test_a_learning_rate_set_while_running_takes_effect_at_the_next_batch():
    """`run.set_learning_rate` from a callback mid-epoch, while the run trains (on
    JAX the optimizer's variables live outside the model between syncs): from the
    next batch on the rate is 0, so the weights stay those after batch 4."""
    x, y = data()
    after_4 = model()
    after_4.fit(x[:4 * BATCH], y[:4 * BATCH], batch_size=BATCH, shuffle=False, verbose=0)
    trained = model()
    holder: dict = {}
    steer = Control(0, 3, lambda: holder["run"].set_learning_rate(0.0))
    run = holder["run"] = nbtrain.fit(trained, x, y, batch_size=BATCH, epochs=2,
                                      shuffle=False, callbacks=[steer], display=False)
    history = run.wait(timeout=TIMEOUT)
    assert steer.done.is_set()
    assert_same_weights(trained, after_4)
    assert float(keras.ops.convert_to_numpy(trained.optimizer.learning_rate)) == 0.0
    assert history.history["learning_rate"][-1] == 0.0
