"""`Run.close()` and `Run.is_chief` outside a multi-worker job (the multi-worker
side is tested in tests/distribute/test_multiworker.py)."""

from __future__ import annotations

import threading

import keras
import pytest
from helpers import make_data, make_model

import nbtrain


class Gate(keras.callbacks.Callback):
    """Holds the training thread at batch `at` until released."""

    def __init__(self, at: int = 2):
        super().__init__()
        self.at, self.reached, self.release = at, threading.Event(), threading.Event()

    def on_train_batch_begin(self, batch, logs=None):
        if batch == self.at and not self.release.is_set():
            self.reached.set()
            self.release.wait(30)


def test_close_stops_waits_and_refuses_to_resume():
    x, y = make_data(64)
    gate = Gate()
    run = nbtrain.fit(make_model(), x, y, batch_size=8, epochs=3, display=False, callbacks=[gate])
    assert run.is_chief
    assert gate.reached.wait(30)
    closer = threading.Thread(target=run.close)
    closer.start()
    gate.release.set()
    closer.join(30)
    assert not closer.is_alive()
    assert run.state == "stopped" and 0 < run.batch < 8
    assert run.allowed_actions() == set()
    with pytest.raises(RuntimeError, match="closed"):
        run.resume()
    run.close()  # twice: a no-op
    assert run.wait() is run.history


def test_close_of_a_finished_and_of_an_unstarted_run():
    x, y = make_data(32)
    run = nbtrain.fit(make_model(), x, y, batch_size=8, epochs=1, display=False)
    run.wait()
    run.close()
    assert run.state == "finished"
    with pytest.raises(RuntimeError, match="closed"):
        run.resume(epochs=2)
    idle = nbtrain.Run(make_model(), x, y, batch_size=8)
    idle.close()
    assert idle.state == "created"
