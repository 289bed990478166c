"""Loop speed: nbtrain against the per-batch limit and Keras's own `model.fit`, in one process.

A 32-64-1 MLP, batch 32, on 2 CPU cores.  Each contender trains one epoch in
turn (alternating, the order reversed every other round, after a warm-up);
medians of steps/s and the ratios against the limit are printed.

The limit is the fastest any per-batch Python loop can go: a tight `for` loop
calling the compiled train step's concrete function
(`tf.function(model.train_step).get_concrete_function(spec)`) on tensors made
beforehand.  Contenders:

- `bare step loop`: that loop (the limit);
- `keras fit(tf.data, spe=16)`: `model.fit` on a cached `tf.data.Dataset` with
  `steps_per_execution=16` (16 steps per compiled call: not a per-batch loop);
- `nbtrain workers=0` / `workers=1`: `fit_generator` on a Sequence (History only);
- `nbtrain epoch callback`: workers=1 with a Keras callback defining only epoch hooks;
- `nbtrain.fit display=False`: the background `Run` (its gate before every step);
- `nbtrain.fit dashboard`: `nbtrain.fit(display=True)`, the live dashboard with
  widgets that are not rendered (their comm serializes every message as a
  kernel would and drops it, as in `bench_dashboard.py`);
- `keras fit(numpy)` and `keras fit(PyDataset)`.

Goals (issue 15): nbtrain workers=1 at least 0.85x the limit; with the
dashboard at least 0.80x; with an epoch-hooks-only callback no slower than
without.  Then a long run (`--long-steps`, 1e5 by default) through
`nbtrain.fit` with the dashboard: its resident memory after warm-up must stay
flat within 5 %.

Run: `.venv/bin/python benchmarks/bench_loop.py [--rounds N] [--steps N] [--long-steps N]`

`bench_loop.py --backend jax|torch|tensorflow` runs `bench_backends.py` instead
(issue 16): the same MLP per Keras backend, nbtrain against `model.fit(numpy)`,
`model.fit(PyDataset)` and that backend's bare compiled-step loop.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time

if __name__ == "__main__" and any(a.startswith("--backend") for a in sys.argv[1:]):
    import runpy  # before Keras is imported: the backend is chosen at import

    runpy.run_path(os.path.join(os.path.dirname(__file__), "bench_backends.py"),
                   run_name="__main__")
    raise SystemExit(0)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import comm  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import nbtrain  # noqa: E402

BATCH = 32


class DroppingComm(comm.DummyComm):
    """A widget comm that serializes what it would send to the front-end, and drops it."""

    messages = 0

    def publish_msg(self, msg_type, data=None, metadata=None, buffers=None, **keys):
        if msg_type == "comm_msg":
            json.dumps(data)
            DroppingComm.messages += 1


comm.create_comm = lambda *args, **kwargs: DroppingComm(*args, **kwargs)


class MemorySequence(nbtrain.Sequence):
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x) // BATCH

    def __getitem__(self, i):
        s = slice(i * BATCH, (i + 1) * BATCH)
        return self.x[s], self.y[s]


class MemoryPyDataset(keras.utils.PyDataset):
    def __init__(self, x, y, **kwargs):
        super().__init__(**kwargs)
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x) // BATCH

    def __getitem__(self, i):
        s = slice(i * BATCH, (i + 1) * BATCH)
        return self.x[s], self.y[s]


class EpochHooksOnly(keras.callbacks.Callback):
    """A callback defining only epoch hooks (as many user callbacks do)."""

    def __init__(self):
        super().__init__()
        self.epochs = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.epochs += 1


class ThreadClock(keras.callbacks.Callback):
    """CPU time of the thread that runs the loop (a `Run` trains on its own
    thread), from `on_train_begin` to `on_train_end`: no batch hooks."""

    seconds = 0.0

    def on_train_begin(self, logs=None):
        self.started = time.thread_time()

    def on_train_end(self, logs=None):
        ThreadClock.seconds = time.thread_time() - self.started


class MemoryProbe(keras.callbacks.Callback):
    """Resident memory at the end of every epoch."""

    def __init__(self):
        super().__init__()
        self.rss: list[int] = []

    def on_epoch_end(self, epoch, logs=None):
        gc.collect()
        self.rss.append(rss())


def rss() -> int:
    """Resident set size of this process, in bytes."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def make_model(**compile_kwargs):
    model = keras.Sequential([
        keras.Input((32,)),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(1),
    ])
    model.compile(optimizer="adam", loss="mse", **compile_kwargs)
    return model


def bare_loop(model, sequence):
    """The limit: the compiled train step's concrete function called in a tight
    loop on tensors made beforehand."""
    batches = [tuple(tf.convert_to_tensor(a) for a in sequence[i]) for i in range(len(sequence))]
    model.fit(*sequence[0], batch_size=BATCH, verbose=0)  # builds the model and optimizer
    spec = tuple(tf.TensorSpec(b.shape, b.dtype) for b in batches[0])
    step = tf.function(model.train_step).get_concrete_function(spec)

    def run():
        for batch in batches:
            step(batch)

    return run


def speed(args) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.steps * BATCH, 32)).astype("float32")
    y = rng.standard_normal((args.steps * BATCH, 1)).astype("float32")
    sequence = MemorySequence(x, y)
    pydataset = MemoryPyDataset(x, y)
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH).cache()
    model = make_model()
    spe_model = make_model(steps_per_execution=16)
    epoch_callback = EpochHooksOnly()

    def nbtrain_fit(display):
        nbtrain.fit(model, sequence, display=display, callbacks=[ThreadClock()]).wait()
        return ThreadClock.seconds

    contenders = {
        "bare step loop": bare_loop(model, sequence),
        "keras fit(tf.data, spe=16)": lambda: spe_model.fit(dataset, verbose=0, shuffle=False),
        "nbtrain workers=0": lambda: nbtrain.fit_generator(model, sequence, workers=0, verbose=0),
        "nbtrain workers=1": lambda: nbtrain.fit_generator(model, sequence, workers=1, verbose=0),
        "nbtrain epoch callback": lambda: nbtrain.fit_generator(
            model, sequence, workers=1, verbose=0, callbacks=[epoch_callback]),
        "nbtrain.fit display=False": lambda: nbtrain_fit(False),
        "nbtrain.fit dashboard": lambda: nbtrain_fit(True),
        "keras fit(numpy)": lambda: model.fit(x, y, batch_size=BATCH, verbose=0, shuffle=False),
        "keras fit(PyDataset)": lambda: model.fit(pydataset, verbose=0),
    }
    rates: dict[str, list[float]] = {name: [] for name in contenders}
    cpu: dict[str, list[float]] = {name: [] for name in contenders}
    for fn in contenders.values():  # warm-up: tracing, thread pools, widgets
        fn()
    for round_ in range(args.rounds):
        order = list(contenders.items())
        if round_ % 2:
            order.reverse()
        for name, fn in order:
            gc.collect()
            start, thread_start = time.perf_counter(), time.thread_time()
            seconds = fn()  # the loop thread's CPU time, when it is not this thread
            rates[name].append(args.steps / (time.perf_counter() - start))
            if not isinstance(seconds, float):
                seconds = time.thread_time() - thread_start
            cpu[name].append(1e6 * seconds / args.steps)

    med = {name: statistics.median(r) for name, r in rates.items()}
    limit = med["bare step loop"]
    print(f"steps/s, median of {args.rounds} alternating rounds of {args.steps} steps "
          f"(batch {BATCH}, 32-64-1 MLP); ratio against the bare step loop (the limit):")
    for name, value in med.items():
        rounds = ", ".join(f"{r:.0f}" for r in rates[name])
        print(f"  {name:27s} {value:7.0f}  {value / limit:5.2f}x   (rounds: {rounds})")
    us = {name: statistics.median(c) for name, c in cpu.items()}
    print("CPU time of the thread running the loop, us per step (median; steadier than "
          "steps/s on a loaded machine), and the limit's over each:")
    for name, value in us.items():
        print(f"  {name:27s} {value:7.0f}  {us['bare step loop'] / value:5.2f}x")
    nb1 = med["nbtrain workers=1"]
    print(f"nbtrain workers=1 / limit:          {nb1 / limit:.2f}x  (goal >= 0.85x)")
    print(f"nbtrain.fit dashboard / limit:      {med['nbtrain.fit dashboard'] / limit:.2f}x  "
          "(goal >= 0.80x)")
    print(f"epoch-hooks callback / without:     {med['nbtrain epoch callback'] / nb1:.2f}x  "
          "(goal: no slower, ~1.00x)")
    print(f"nbtrain workers=1 / fit(numpy):     {nb1 / med['keras fit(numpy)']:.2f}x")
    print(f"nbtrain workers=1 / fit(PyDataset): {nb1 / med['keras fit(PyDataset)']:.2f}x")
    print(f"nbtrain workers=1 / fit(tf.data, steps_per_execution=16): "
          f"{nb1 / med['keras fit(tf.data, spe=16)']:.2f}x")


def memory(args) -> None:
    steps = 2000
    epochs = max(args.long_steps // steps, 2)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((steps * BATCH, 32)).astype("float32")
    y = rng.standard_normal((steps * BATCH, 1)).astype("float32")
    probe = MemoryProbe()
    start = time.perf_counter()
    nbtrain.fit(make_model(), MemorySequence(x, y), epochs=epochs, callbacks=[probe],
                display=True).wait()
    seconds = time.perf_counter() - start
    warm = max(1, epochs // 10)  # after the first tenth of the run
    base, end = probe.rss[warm - 1], probe.rss[-1]
    peak = max(probe.rss[warm - 1:])
    print(f"memory of a {epochs * steps:,}-step nbtrain.fit run with the dashboard "
          f"({epochs * steps / seconds:.0f} steps/s): RSS {base / 2**20:.1f} MB after "
          f"{warm * steps:,} steps, {end / 2**20:.1f} MB at the end (peak {peak / 2**20:.1f} MB): "
          f"growth {100 * (end - base) / base:+.2f}%  (goal: within 5%)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=2000, help="steps per timed epoch")
    parser.add_argument("--long-steps", type=int, default=100_000,
                        help="steps of the memory run (0: skip it)")
    args = parser.parse_args()
    speed(args)
    if args.long_steps:
        memory(args)


if __name__ == "__main__":
    main()
