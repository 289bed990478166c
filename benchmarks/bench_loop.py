"""Loop speed: nbtrain.fit_generator against Keras's own model.fit, in one process.

A 32-64-1 MLP, batch 32, on 2 CPU cores.  Each contender trains one epoch in
turn (alternating, after a warm-up), several rounds; medians of steps/s and
the ratios are printed.  Goals (issue 2): nbtrain with workers=1 at least 1.2x
`model.fit` on NumPy arrays and at least 2x `model.fit` on a PyDataset.

Run: `.venv/bin/python benchmarks/bench_loop.py [--rounds N] [--steps N]`
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import nbtrain  # noqa: E402

BATCH = 32


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


def make_model():
    model = keras.Sequential([
        keras.Input((32,)),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(1),
    ])
    model.compile(optimizer="adam", loss="mse")
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=2000, help="steps per timed epoch")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.steps * BATCH, 32)).astype("float32")
    y = rng.standard_normal((args.steps * BATCH, 1)).astype("float32")
    sequence = MemorySequence(x, y)
    pydataset = MemoryPyDataset(x, y)
    model = make_model()

    contenders = {
        "nbtrain workers=0": lambda: nbtrain.fit_generator(model, sequence, workers=0, verbose=0),
        "nbtrain workers=1": lambda: nbtrain.fit_generator(model, sequence, workers=1, verbose=0),
        "keras fit(numpy)": lambda: model.fit(x, y, batch_size=BATCH, verbose=0, shuffle=False),
        "keras fit(PyDataset)": lambda: model.fit(pydataset, verbose=0),
    }
    rates: dict[str, list[float]] = {name: [] for name in contenders}
    for fn in contenders.values():  # warm-up: tracing, thread pools
        fn()
    for _ in range(args.rounds):
        for name, fn in contenders.items():
            start = time.perf_counter()
            fn()
            rates[name].append(args.steps / (time.perf_counter() - start))

    med = {name: statistics.median(r) for name, r in rates.items()}
    print(f"steps/s, median of {args.rounds} rounds of {args.steps} steps (batch {BATCH}):")
    for name, value in med.items():
        print(f"  {name:22s} {value:8.0f}")
    nb = med["nbtrain workers=1"]
    print(f"ratio nbtrain(workers=1) / keras fit(numpy):     {nb / med['keras fit(numpy)']:.2f}x"
          "  (goal >= 1.2x)")
    print(f"ratio nbtrain(workers=1) / keras fit(PyDataset): {nb / med['keras fit(PyDataset)']:.2f}x"
          "  (goal >= 2x)")
    print(f"ratio nbtrain(workers=0) / keras fit(numpy):     "
          f"{med['nbtrain workers=0'] / med['keras fit(numpy)']:.2f}x")


if __name__ == "__main__":
    main()
