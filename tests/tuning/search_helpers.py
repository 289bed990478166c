"""Small Keras Tuner searches for the tests of `nbtrain.search` (also run in a subprocess)."""

from __future__ import annotations

import queue
import sys
import threading

import keras
import numpy as np

import nbtrain

FEATURES, SAMPLES, BATCH = 4, 64, 8


def make_data(seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((SAMPLES, FEATURES)).astype("float32")
    y = (x @ np.arange(1, FEATURES + 1, dtype="float32")[:, None]).astype("float32")
    return x, y


def build(hp) -> keras.Model:
    """A one-hidden-layer regression model with two hyperparameters."""
    model = keras.Sequential([
        keras.Input((FEATURES,)),
        keras.layers.Dense(hp.Int("units", 2, 8, step=2), activation="relu"),
        keras.layers.Dense(1),
    ])
    model.compile(optimizer=keras.optimizers.SGD(hp.Choice("lr", [0.003, 0.01, 0.03])),
                  loss="mse")
    return model


def random_search(directory, project: str = "p", max_trials: int = 3, overwrite: bool = True):
    import keras_tuner as kt

    return kt.RandomSearch(build, objective="val_loss", max_trials=max_trials, seed=7,
                           directory=str(directory), project_name=project,
                           overwrite=overwrite)


class GatedSequence(nbtrain.Sequence):
    """8 batches of 8 samples, not shuffled by the test (`shuffle=False`); records
    every index it serves (and 'end' at `on_epoch_end`).  At the reads numbered in
    `gates` (1-based, over its whole life) the read holds until the test lets it go:
    `(count, event) = sequence.hits.get()`, act, `event.set()`."""

    def __init__(self, x, y, gates=()):
        self.x, self.y = x, y
        self.gates = set(gates)
        self.served: list = []
        self.hits: queue.Queue = queue.Queue()
        self.lock = threading.Lock()

    def __len__(self):
        return SAMPLES // BATCH

    def __getitem__(self, index):
        with self.lock:
            self.served.append(index)
            count = sum(1 for item in self.served if item != "end")
        if count in self.gates:
            go = threading.Event()
            self.hits.put((count, go))
            go.wait(30)
        s = slice(index * BATCH, (index + 1) * BATCH)
        return self.x[s], self.y[s]

    def on_epoch_end(self):
        with self.lock:
            self.served.append("end")

    def next_hit(self):
        """The next held read: `(count, event)`; set the event to let it go."""
        return self.hits.get(timeout=60)


def wait_for_state(search, *states: str, timeout: float = 60) -> None:
    """Block until `search.state` is one of `states` (told by the search's listener)."""
    cond = threading.Condition()

    def told(_search, event, _detail):
        if event == "state":
            with cond:
                cond.notify_all()

    remove = search.add_listener(told)
    try:
        with cond:
            assert cond.wait_for(lambda: search.state in states, timeout), (
                f"the search is {search.state}, not {states}")
    finally:
        remove()


def continue_search(directory: str) -> None:
    """In a fresh process: load the project with overwrite=False and search on; print
    the oracle's trials as JSON lines."""
    import json

    x, y = make_data()
    tuner = random_search(directory, max_trials=2, overwrite=False)
    search = nbtrain.search(tuner, x, y, epochs=1, batch_size=BATCH,
                            validation_data=(x, y), display=False, verbose=0)
    search.wait()
    for record in search.trials:
        print(json.dumps({"id": record.trial_id, "status": record.status,
                          "values": record.hyperparameters, "runs": len(record.runs)}))
    print(json.dumps({"state": str(search.state)}))
    sys.stdout.flush()
    # Then a search the script does not wait for: at exit it is named and closed.
    sequence = GatedSequence(x, y, gates={2})
    left = nbtrain.search(random_search(directory, "left"), sequence, epochs=1,
                          validation_data=(x, y), workers=0, display=False, verbose=0)
    _, go = sequence.next_hit()
    go.set()
    assert left.state == "running"
