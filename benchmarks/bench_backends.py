"""Loop speed per Keras backend: nbtrain against `model.fit` and a bare compiled-step loop.

A 32-64-1 MLP, batch 32, Adam, on the CPU.  One backend per process (Keras
picks it at import): `--backend jax|torch|tensorflow` sets `KERAS_BACKEND`.
Each contender trains one epoch in turn (alternating, the order reversed every
other round, after a warm-up); medians of steps/s are printed, with every
round's figure.

- `bare step loop`: the backend's compiled train step called in a tight loop
  on device tensors made beforehand (JAX: `jax.jit(model.train_step)` on the
  state tuple; PyTorch: Keras's `train_function`; TensorFlow: the concrete
  function of `tf.function(model.train_step)`): the limit of a per-batch loop;
- `nbtrain workers=1`: `nbtrain.fit_generator` on a Sequence, History only;
- `nbtrain workers=1 batch logs`: the same with a callback reading every
  batch's logs (what a per-batch display costs: the logs become numbers);
- `keras fit(numpy)`, `keras fit(PyDataset)`: Keras's own `fit`.

Goals (issue 16): on JAX nbtrain at least 1.5x `fit(numpy)` and 0.6x the bare
loop; on PyTorch at least 1.15x `fit(numpy)`.

Run: `python benchmarks/bench_backends.py --backend jax [--rounds N] [--steps N]`
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time

BATCH = 32


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["jax", "torch", "tensorflow"],
                        default=os.environ.get("KERAS_BACKEND", "tensorflow"))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=None,
                        help="steps per timed epoch (default 8000 on JAX, whose 2000 steps "
                             "take 0.3 s, too short to time; 2000 otherwise)")
    args = parser.parse_args()
    if args.steps is None:
        args.steps = 8000 if args.backend == "jax" else 2000
    return args


def make_model(keras):
    model = keras.Sequential([
        keras.Input((32,)),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(1),
    ])
    model.compile(optimizer="adam", loss="mse")
    return model


def bare_loop(backend: str, model, batches):
    """The limit: the backend's compiled train step in a tight loop on tensors
    made beforehand (the model is built by a `fit` first)."""
    if backend == "jax":
        import jax

        step = jax.jit(model.train_step, donate_argnums=0)
        batches = [jax.device_put(b) for b in batches]

        def run():
            state = (
                [v.value for v in model.trainable_variables],
                [v.value for v in model.non_trainable_variables],
                [v.value for v in model.optimizer.variables],
                [v.value for v in model.metrics_variables],
            )
            state = jax.tree_util.tree_map(lambda a: a.copy(), state)
            for batch in batches:
                logs, state = step(state, batch)
            jax.block_until_ready(state)

        return run
    if backend == "torch":
        import keras

        batches = [tuple(keras.ops.convert_to_tensor(a) for a in b) for b in batches]
        model.make_train_function()
        function = model.train_function

        def run():
            model.train()
            for batch in batches:
                function([batch])

        return run
    import tensorflow as tf

    batches = [tuple(tf.convert_to_tensor(a) for a in b) for b in batches]
    spec = tuple(tf.TensorSpec(a.shape, a.dtype) for a in batches[0])
    step = tf.function(model.train_step).get_concrete_function(spec)

    def run():
        for batch in batches:
            step(batch)

    return run


class BatchLogs:
    """A Keras callback reading every batch's logs as numbers."""

    @staticmethod
    def make(keras):
        class Reader(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                self.last = float(logs["loss"])

        return Reader()


def main() -> None:
    args = parse()
    os.environ["KERAS_BACKEND"] = args.backend
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import numpy as np

    import nbtrain

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

    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.steps * BATCH, 32)).astype("float32")
    y = rng.standard_normal((args.steps * BATCH, 1)).astype("float32")
    sequence = MemorySequence(x, y)
    pydataset = MemoryPyDataset(x, y)
    model = make_model(keras)
    model.fit(x[:BATCH], y[:BATCH], batch_size=BATCH, verbose=0)  # builds model and optimizer
    reader = BatchLogs.make(keras)
    contenders = {
        "bare step loop": bare_loop(args.backend, model,
                                    [sequence[i] for i in range(len(sequence))]),
        "nbtrain workers=1": lambda: nbtrain.fit_generator(model, sequence, workers=1,
                                                           verbose=0),
        "nbtrain workers=1 batch logs": lambda: nbtrain.fit_generator(
            model, sequence, workers=1, verbose=0, callbacks=[reader]),
        "keras fit(numpy)": lambda: model.fit(x, y, batch_size=BATCH, verbose=0, shuffle=False),
        "keras fit(PyDataset)": lambda: model.fit(pydataset, verbose=0),
    }
    rates: dict[str, list[float]] = {name: [] for name in contenders}
    for fn in contenders.values():  # warm-up: tracing, thread pools
        fn()
    for round_ in range(args.rounds):
        order = list(contenders.items())
        if round_ % 2:
            order.reverse()
        for name, fn in order:
            gc.collect()
            start = time.perf_counter()
            fn()
            rates[name].append(args.steps / (time.perf_counter() - start))

    med = {name: statistics.median(r) for name, r in rates.items()}
    limit, numpy_fit = med["bare step loop"], med["keras fit(numpy)"]
    print(f"{args.backend} (keras {keras.__version__}, python {sys.version.split()[0]}): "
          f"steps/s, median of {args.rounds} alternating rounds of {args.steps} steps "
          f"(batch {BATCH}, 32-64-1 MLP, Adam):")
    for name, value in med.items():
        rounds = ", ".join(f"{r:.0f}" for r in rates[name])
        print(f"  {name:29s} {value:7.0f}  {value / numpy_fit:5.2f}x fit(numpy)  "
              f"{value / limit:5.2f}x bare   (rounds: {rounds})")
    nb = med["nbtrain workers=1"]
    print(f"| {args.backend} | {nb:.0f} | {numpy_fit:.0f} | {nb / numpy_fit:.2f}x | "
          f"{med['keras fit(PyDataset)']:.0f} | {limit:.0f} | {nb / limit:.2f}x |")


if __name__ == "__main__":
    main()
