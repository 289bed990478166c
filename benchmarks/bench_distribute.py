"""The per-step cost of keeping a MultiWorkerMirroredStrategy job in step.

Starts two worker processes on 127.0.0.1 (TF_CONFIG), each training a 32-64-1
MLP on its shard of the same Sequence (batch 32 per worker, 64 global).  Each
worker trains one epoch per contender in turn (alternating, after a warm-up),
several rounds, with the same `FitLoop`s:

- `no control`: the loop without a gate (nothing to steer it: the baseline);
- `collective gate`: nbtrain's `CollectiveGate`, the control words carried by
  the train step itself (what a multi-worker `Run` uses);
- `gate, own exchange`: the same gate with the control all-reduce made on its
  own before every step (the straightforward design, for comparison).

Medians of ms/step and the ratios to `no control` are printed.

Run: `.venv/bin/python benchmarks/bench_distribute.py [--rounds N] [--steps N]`
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

BATCH = 32
CONTENDERS = ("no control", "collective gate", "gate, own exchange")


def worker(args: argparse.Namespace) -> None:
    """One worker: train every contender in turn and print the timings as JSON."""
    import nbtrain

    strategy = nbtrain.multi_worker_strategy(timeout=60)

    import keras
    import numpy as np

    from nbtrain.engine import FitLoop
    from nbtrain.engine.distributed import CollectiveControl, CollectiveGate

    rng = np.random.default_rng(0)
    rows = args.steps * BATCH * 2
    x = rng.standard_normal((rows, 32)).astype("float32")
    y = rng.standard_normal((rows, 1)).astype("float32")

    class Rows(nbtrain.Sequence):
        def __len__(self):
            return rows // BATCH

        def __getitem__(self, i):
            return x[i * BATCH:(i + 1) * BATCH], y[i * BATCH:(i + 1) * BATCH]

    with strategy.scope():
        keras.utils.set_random_seed(1)
        model = keras.Sequential([keras.Input((32,)), keras.layers.Dense(64, activation="relu"),
                                  keras.layers.Dense(1)])
        model.compile(optimizer="adam", loss="mse")
    control = CollectiveControl(strategy)
    loops = {}
    for name in CONTENDERS:
        loop = FitLoop(model, nbtrain.ShardedSequence(Rows()), epochs=0, verbose=0,
                       shuffle=False, workers=1)
        if name != "no control":
            loop.set_gate(CollectiveGate(control, loop))
        if name == "gate, own exchange":
            loop.set_carrier(None)
        loops[name] = loop

    def one_epoch(loop: FitLoop) -> float:
        loop.set_epochs(loop.epochs + 1)
        start = time.perf_counter()
        loop.run()
        return (time.perf_counter() - start) * 1000 / args.steps

    for loop in loops.values():  # warm-up: trace the steps, start the threads
        one_epoch(loop)
    times: dict[str, list[float]] = {name: [] for name in CONTENDERS}
    for _ in range(args.rounds):
        for name, loop in loops.items():
            times[name].append(one_epoch(loop))
    print(json.dumps({"task": control.task, "ms_per_step": times}), flush=True)


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=300, help="steps per timed epoch")
    parser.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        worker(args)
        return

    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    procs = []
    with tempfile.TemporaryDirectory(prefix="nbtrain_bench_distribute_") as tmp:
        try:
            for index in range(2):
                env = dict(os.environ, TF_CONFIG=json.dumps(
                    {"cluster": cluster, "task": {"type": "worker", "index": index}}))
                with open(os.path.join(tmp, f"worker{index}.err"), "wb") as err:
                    procs.append(subprocess.Popen(
                        [sys.executable, __file__, "--worker", str(index),
                         "--rounds", str(args.rounds), "--steps", str(args.steps)],
                        env=env, stdout=subprocess.PIPE, stderr=err, text=True,
                    ))
            results = []
            for index, proc in enumerate(procs):
                out, _ = proc.communicate(timeout=900)
                if proc.returncode:
                    with open(os.path.join(tmp, f"worker{index}.err"), errors="replace") as err:
                        tail = err.read().splitlines()[-30:]
                    raise SystemExit(f"worker {index} failed (exit code {proc.returncode}):\n"
                                     + "\n".join(tail))
                results.append(json.loads(out.strip().splitlines()[-1]))
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                proc.wait()

    print(f"2 workers x 1 CPU replica, batch {BATCH} per worker, {args.steps} steps per epoch, "
          f"{args.rounds} rounds (medians)")
    for result in results:
        medians = {name: statistics.median(values)
                   for name, values in result["ms_per_step"].items()}
        base = medians["no control"]
        print(f"  {result['task']}:")
        for name in CONTENDERS:
            print(f"    {name:<20} {medians[name]:7.2f} ms/step   ratio {medians[name] / base:5.3f}")
    print("ratio = ms/step against the same run without the control check "
          "(1.00 = free); nbtrain uses 'collective gate'")


if __name__ == "__main__":
    main()
