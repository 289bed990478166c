"""Search speed: trials per hour of `nbtrain.search` with its dashboard against a plain
`tuner.search`, on the same tuner and data, in the same process.

A Keras Tuner `RandomSearch` (seed fixed: both searches run the same trials) of a
small MLP (units and learning rate tuned) on 4096 in-memory samples, batch 32,
`--epochs` epochs a trial with validation.  Each round runs the plain
`tuner.search(..., verbose=0)` and `nbtrain.search(..., display=True)` (the live
search dashboard; its widgets' comm is a counting fake that serializes every
message as a kernel would, so no kernel is needed) on fresh projects,
alternating which goes first, after a warm-up search; the figures are the
medians over rounds of trials per hour (wall clock) and of the paired ratios,
and the same ratio of CPU time (the process's, all threads: less sensitive to
other load on the machine).

Goal (issue 30): at least 1.0x (nbtrain's loop is faster than `model.fit`).

Run: `.venv/bin/python benchmarks/bench_search.py [--rounds N] [--trials N] [--epochs N]`
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import nbtrain  # noqa: E402,I001  (first: it holds TensorFlow's start-up lines back)

import comm  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

SAMPLES, FEATURES, BATCH = 4096, 32, 32


class CountingComm(comm.DummyComm):
    """A widget comm that serializes and counts what it would send to the front-end."""

    messages = 0

    def publish_msg(self, msg_type, data=None, metadata=None, buffers=None, **keys):
        if msg_type == "comm_msg":
            json.dumps(data)
            CountingComm.messages += 1


comm.create_comm = lambda *args, **kwargs: CountingComm(*args, **kwargs)


def build(hp) -> keras.Model:
    model = keras.Sequential([
        keras.Input((FEATURES,)),
        keras.layers.Dense(hp.Int("units", 32, 128, step=32), activation="relu"),
        keras.layers.Dense(hp.Int("units", 32, 128, step=32), activation="relu"),
        keras.layers.Dense(1),
    ])
    model.compile(optimizer=keras.optimizers.Adam(hp.Choice("lr", [1e-3, 3e-3])), loss="mse")
    return model


def data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((SAMPLES, FEATURES)).astype("float32")
    y = (x[:, :4].sum(1, keepdims=True) + 0.1 * rng.standard_normal((SAMPLES, 1))).astype(
        "float32")
    return x, y


def tuner(directory: str, name: str, trials: int):
    import keras_tuner as kt

    return kt.RandomSearch(build, objective="val_loss", max_trials=trials, seed=11,
                           directory=directory, project_name=name, overwrite=True)


def plain(directory: str, name: str, trials: int, epochs: int, x, y) -> tuple[float, float]:
    """Trials per hour of `tuner.search`, by wall clock and by the process's CPU time."""
    searched = tuner(directory, name, trials)
    start, cpu = time.perf_counter(), time.process_time()
    searched.search(x, y, epochs=epochs, batch_size=BATCH, validation_split=0.25, verbose=0)
    return (trials * 3600 / (time.perf_counter() - start),
            trials * 3600 / (time.process_time() - cpu))


def ours(directory: str, name: str, trials: int, epochs: int, x, y,
         display: bool = True) -> tuple[float, float]:
    """Trials per hour of `nbtrain.search` with the search dashboard (wall, CPU)."""
    searched = tuner(directory, name, trials)
    start, cpu = time.perf_counter(), time.process_time()
    search = nbtrain.search(searched, x, y, epochs=epochs, batch_size=BATCH,
                            validation_split=0.25, display=display)
    search.wait()
    elapsed, used = time.perf_counter() - start, time.process_time() - cpu
    assert search.state == "finished" and len(search.trials) == trials
    return trials * 3600 / elapsed, trials * 3600 / used


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    x, y = data()
    with tempfile.TemporaryDirectory() as directory:
        plain(directory, "warm-plain", 1, 1, x, y)
        ours(directory, "warm-nbtrain", 1, 1, x, y)
        rates: dict[str, list[tuple[float, float]]] = {"plain": [], "nbtrain": []}
        for round_ in range(args.rounds):
            order = [("plain", plain), ("nbtrain", ours)]
            for label, measure in order if round_ % 2 == 0 else order[::-1]:
                wall, cpu = measure(directory, f"{label}-{round_}", args.trials, args.epochs,
                                    x, y)
                rates[label].append((wall, cpu))
                print(f"round {round_} {label:8s} {wall:8.0f} trials/h "
                      f"({cpu:8.0f} per CPU hour)", flush=True)
    pairs = list(zip(rates["plain"], rates["nbtrain"]))
    wall_ratio = statistics.median(ours_[0] / keras_[0] for keras_, ours_ in pairs)
    cpu_ratio = statistics.median(ours_[1] / keras_[1] for keras_, ours_ in pairs)
    keras_rate, our_rate = (statistics.median(r[0] for r in rates[k])
                            for k in ("plain", "nbtrain"))
    print(f"\ntuner.search:                  {keras_rate:8.0f} trials/h (median of {args.rounds})")
    print(f"nbtrain.search with dashboard: {our_rate:8.0f} trials/h")
    print(f"ratio: {wall_ratio:.2f}x wall clock, {cpu_ratio:.2f}x CPU time (medians of the "
          f"rounds' ratios; goal >= 1.0x; {CountingComm.messages} widget messages)")


if __name__ == "__main__":
    main()
