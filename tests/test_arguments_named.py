"""Every argument named: a wrong argument's error names it, and a control the
run's state makes a no-op says so (one rule for pause, resume and stop: a
`RuntimeWarning` naming the state, and False)."""

from __future__ import annotations

import threading
import warnings

import keras
import numpy as np
import pytest
from helpers import make_data, make_model

import nbtrain
from nbtrain.data import GeneratorEnqueuer, OrderedEnqueuer

TIMEOUT = 60


class Blocks(keras.callbacks.Callback):
    """Holds the training thread after batch `at` of epoch 0 until `go` is set."""

    def __init__(self, at: int = 0):
        super().__init__()
        self.at, self.reached, self.go = at, threading.Event(), threading.Event()

    def on_train_batch_end(self, batch, logs=None):
        if batch == self.at and not self.reached.is_set():
            self.reached.set()
            assert self.go.wait(TIMEOUT)


def started_run(epochs: int = 1):
    x, y = make_data(32)
    hold = Blocks()
    run = nbtrain.fit(make_model(), x, y, batch_size=8, epochs=epochs, callbacks=[hold],
                      display=False)
    assert hold.reached.wait(TIMEOUT)
    return run, hold


# -- wrong arguments -------------------------------------------------------------------------


def test_compare_with_that_is_not_a_run_names_compare_with():
    x, y = make_data(16)
    with pytest.raises(TypeError, match=r"`compare_with` must be an earlier nbtrain.Run or a "
                                        r"keras.callbacks.History, got int \(42\)"):
        nbtrain.fit(make_model(), x, y, compare_with=42, display=False)


@pytest.mark.parametrize("timeout", ["5", True, [5]])
@pytest.mark.parametrize("method", ["wait", "close"])
def test_a_timeout_that_is_not_a_number_names_timeout(method, timeout):
    run, hold = started_run()
    try:
        with pytest.raises(TypeError, match="`timeout` must be a number of seconds or None, got "):
            getattr(run, method)(timeout=timeout)
        with pytest.raises(ValueError, match="`timeout` must be a number of seconds >= 0"):
            getattr(run, method)(timeout=-1)
    finally:
        hold.go.set()
        run.wait(timeout=TIMEOUT)
    run.close(timeout=np.float32(5))  # a NumPy number is a number


@pytest.mark.parametrize("enqueuer", [
    lambda: OrderedEnqueuer(nbtrain.data.ArraySequence(np.zeros((8, 2)), None, batch_size=4)),
    lambda: GeneratorEnqueuer(iter(range(3))),
], ids=["OrderedEnqueuer", "GeneratorEnqueuer"])
@pytest.mark.parametrize("name", ["workers", "max_queue_size"])
def test_enqueuer_start_names_the_argument(enqueuer, name):
    with pytest.raises(TypeError, match=rf"`{name}` must be an integer, got 2.0 \(float\)"):
        enqueuer().start(**{name: 2.0})
    with pytest.raises(ValueError, match=rf"`{name}` must be at least 1, got 0"):
        enqueuer().start(**{name: 0})
    started = enqueuer()
    started.start(**{name: np.int64(2)})  # any integer type
    started.stop()


# -- controls that cannot act ------------------------------------------------------------------


def test_pause_resume_stop_that_cannot_act_warn_and_return_false():
    run, hold = started_run()
    with pytest.warns(RuntimeWarning, match=r"run.resume\(\) did nothing: the run is already "
                                            r"running") as warned:
        assert run.resume() is False
    assert warned[0].filename == __file__  # points at the caller's line
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert run.pause() is True  # a control that acts says nothing
    with pytest.warns(RuntimeWarning, match=r"run.pause\(\) did nothing: the run is already "
                                            r"pausing"):
        assert run.pause() is False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert run.stop() is True
    with pytest.warns(RuntimeWarning, match=r"run.stop\(\) did nothing: the run is already "
                                            r"stopping"):
        assert run.stop() is False
    with pytest.warns(RuntimeWarning, match=r"run.resume\(\) did nothing: the run is still "
                                            r"stopping: call run.wait\(\), then run.resume\(\)"):
        assert run.resume() is False
    hold.go.set()
    run.wait(timeout=TIMEOUT)
    assert run.state == "stopped"
    with pytest.warns(RuntimeWarning, match=r"run.stop\(\) did nothing: the run is already "
                                            r"stopped"):
        assert run.stop() is False
    with pytest.warns(RuntimeWarning, match=r"run.pause\(\) did nothing: the run is stopped; "
                                            r"run.resume\(\) continues it"):
        assert run.pause() is False
    run.resume()
    run.wait(timeout=TIMEOUT)
    assert run.state == "finished"
    for control in ("pause", "stop"):
        with pytest.warns(RuntimeWarning, match=rf"run.{control}\(\) did nothing: the run has "
                                                r"finished"):
            assert getattr(run, control)() is False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run.close()  # stops quietly, whatever the state


def test_controls_that_can_never_act_raise():
    x, y = make_data(16)
    run = nbtrain.Run(make_model(), x, y, batch_size=8)
    for control in ("pause", "resume", "stop"):
        with pytest.raises(RuntimeError, match=rf"has not started: call run.start\(\) before "
                                               rf"run.{control}\(\)"):
            getattr(run, control)()
