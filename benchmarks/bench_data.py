"""Data-layer speed: nbtrain's enqueuers against Keras 3's, in one process.

(a) transport: 6.3 MB batches (32x128x128x3 float32) through 2 worker
    processes, consumer only.  nbtrain (persistent spawned workers, batches in
    shared memory) against Keras's `OrderedEnqueuer` (a forked Pool per epoch,
    batches pickled through a pipe).  Goal: at least 5x Keras's MB/s.
(b) CPU-bound Python: a Sequence whose `__getitem__` holds the GIL; nbtrain
    with 2 processes against 1 process.  Goal: at least 1.6x.  This needs two
    idle cores: the context line says how long the workers waited for a CPU
    and how much two plain Python processes gain on this machine right now.
(c) training on an I/O-bound Sequence (10 ms sleep per batch) with 4 worker
    threads and a model much faster than the data: `nbtrain.fit_generator`
    against `model.fit(PyDataset(workers=4))`, 100-step epochs.  Goals: at
    least 340 steps/s and at least 1.3x Keras.  Also shown for 400-step
    epochs: the data caps both at 400 steps/s and Keras's cost is mostly a
    restart of its enqueuer every epoch, so the ratio shrinks as epochs grow.

(d) a tutorial-style `keras.utils.Sequence` in a module that imports Keras
    (`npy_generator.py`: one 32x32x32x1 float32 .npy file per sample, batches
    of 32), trained with N = 2, 4, 6 process workers: `nbtrain.fit_generator(
    workers=N, use_multiprocessing=True)` against `model.fit(PyDataset(workers=N,
    use_multiprocessing=True))` on the same generator.  First epoch (from the
    call, so worker start-up counts), later epochs, and the sum of the worker
    processes' PSS (/proc/PID/smaps_rollup, sampled during epoch 2).  Goals:
    first epoch no slower than Keras's at every N, later epochs at least 4x
    faster, worker PSS at most 1.5x Keras's.  Keras forks its workers from the
    TensorFlow-running process, which can deadlock them: a watchdog ends the
    benchmark with a line saying so when a fit makes no progress for 120 s.

Contenders alternate, round after round; medians and ratios are printed, as
well as the nbtrain workers' start-up time.

Run: `.venv/bin/python benchmarks/bench_data.py [--only a,b,c,d] [--rounds N]`
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import threading
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras.src.trainers.data_adapters import py_dataset_adapter  # noqa: E402

import nbtrain  # noqa: E402

BIG = (32, 128, 128, 3)
BIG_MB = np.prod(BIG) * 4 / 1e6
SPIN = 600_000  # pure-Python iterations per batch in (b): about 25 ms


# -- datasets (defined in __main__: nbtrain ships them to workers by value) ----------
def big_batch(i: int):
    return np.full(BIG, i, np.float32), np.full((BIG[0], 1), i, np.float32)


def spin_batch(i: int):
    total = 0
    for k in range(SPIN):
        total += (k * i) % 7
    return np.array([total, i], np.int64)


class BigSequence(nbtrain.Sequence):
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return big_batch(i)


class BigPyDataset(keras.utils.PyDataset):
    def __init__(self, n, **kwargs):
        super().__init__(**kwargs)
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return big_batch(i)


class SpinSequence(BigSequence):
    def __getitem__(self, i):
        return spin_batch(i)


class SpinPyDataset(BigPyDataset):
    def __getitem__(self, i):
        return spin_batch(i)


def io_batch(i: int):
    time.sleep(0.01)
    rng = np.random.default_rng(i)
    return rng.standard_normal((32, 8), dtype=np.float32), rng.standard_normal((32, 1), dtype=np.float32)


class IOSequence(BigSequence):
    def __getitem__(self, i):
        return io_batch(i)


class IOPyDataset(BigPyDataset):
    def __getitem__(self, i):
        return io_batch(i)


def schedstat(pid: int) -> tuple[float, float]:
    """Seconds process `pid` has run on a CPU and waited for one (Linux)."""
    try:
        with open(f"/proc/{pid}/schedstat") as f:
            run, wait, _ = (int(v) for v in f.read().split())
    except OSError:
        return 0.0, 0.0
    return run / 1e9, wait / 1e9


# -- readers -----------------------------------------------------------------------
class NbtrainReader:
    """One persistent nbtrain enqueuer; each round reads one pass."""

    def __init__(self, sequence, workers, use_multiprocessing=True):
        self.n = len(sequence)
        self.waited: list[float] = []  # share of each pass a worker waited for a CPU
        self.enqueuer = nbtrain.OrderedEnqueuer(sequence, use_multiprocessing=use_multiprocessing)
        self.enqueuer.start(workers=workers, max_queue_size=10)
        pool = self.enqueuer._pool
        self.startup = []
        if use_multiprocessing:
            pool.wait_ready(60)
            self.startup = pool.startup_times
        self.batches = self.enqueuer.get()
        next(self.batches)  # warm-up; the rest of that pass is read below
        for _ in range(self.n - 1):
            next(self.batches)

    def pass_seconds(self) -> float:
        pids = self.enqueuer._pool.pids if hasattr(self.enqueuer._pool, "pids") else []
        before = [schedstat(pid) for pid in pids]
        t = time.perf_counter()
        for _ in range(self.n):
            next(self.batches)
        seconds = time.perf_counter() - t
        after = [schedstat(pid) for pid in pids]
        self.waited += [(a[1] - b[1]) / seconds for a, b in zip(after, before)]
        return seconds

    def close(self):
        self.batches.close()
        self.enqueuer.stop()


class KerasReader:
    """Keras's OrderedEnqueuer as PyDatasetAdapter drives it: started and
    stopped around every epoch."""

    def __init__(self, dataset, workers, use_multiprocessing=True):
        self.n = len(dataset)
        self.steady: list[float] = []
        self.enqueuer = py_dataset_adapter.OrderedEnqueuer(
            dataset, workers=workers, use_multiprocessing=use_multiprocessing, max_queue_size=10
        )
        self.pass_seconds()  # warm-up

    def pass_seconds(self) -> float:
        t = time.perf_counter()
        self.enqueuer.start()
        batches = itertools.islice(self.enqueuer.get(), self.n)
        next(batches)
        first = time.perf_counter()
        for _ in batches:
            pass
        end = time.perf_counter()
        self.enqueuer.stop()
        self.steady.append((end - first) / (self.n - 1))  # seconds a batch, start-up excluded
        return time.perf_counter() - t

    def close(self):
        self.enqueuer.stop()


def race(contenders: dict, rounds: int, best: dict | None = None) -> dict[str, float]:
    """Median seconds per pass of each contender, passes alternating (the
    fastest pass of each goes into `best`, if given)."""
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, reader in contenders.items():
            times[name].append(reader.pass_seconds())
    if best is not None:
        best.update({name: min(t) for name, t in times.items()})
    return {name: statistics.median(t) for name, t in times.items()}


# -- the three benchmarks ----------------------------------------------------------------
def bench_transport(rounds: int) -> None:
    n = 48
    nb = NbtrainReader(BigSequence(n), workers=2)
    kr = KerasReader(BigPyDataset(n), workers=2)
    try:
        med = race({"nbtrain": nb, "keras": kr}, rounds)
    finally:
        nb.close()
        kr.close()
    mbs = {name: n * BIG_MB / s for name, s in med.items()}
    print(f"(a) {BIG_MB:.1f} MB batches, 2 worker processes, {n} batches a pass, "
          f"median of {rounds}")
    for name, v in mbs.items():
        print(f"    {name:<8} {v:8.0f} MB/s   ({n / med[name]:6.1f} batches/s)")
    steady = BIG_MB / statistics.median(kr.steady[1:])
    print(f"    keras, its pool start-up excluded: {steady:.0f} MB/s")
    print(f"    ratio nbtrain / keras: {mbs['nbtrain'] / mbs['keras']:.2f}x   (goal >= 5x; "
          f"{mbs['nbtrain'] / steady:.2f}x against Keras's steady state)")
    print(f"    nbtrain worker start-up: {', '.join(f'{s * 1000:.0f} ms' for s in nb.startup)}")


def machine_scaling() -> float:
    """How much faster two plain Python processes get through the same work as
    one (2.0 on two idle cores; less on a loaded or shared machine)."""
    import subprocess
    import sys

    code = "t=0\nfor k in range(8_000_000): t += (k * 3) % 7"

    def wall(n):
        t = time.perf_counter()
        procs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(n)]
        for p in procs:
            p.wait()
        return time.perf_counter() - t

    return statistics.median(2 * wall(1) / wall(2) for _ in range(3))


def bench_cpu(rounds: int) -> None:
    n = 32
    # Each contender runs alone: persistent workers of the others would otherwise keep
    # computing read-ahead batches on the same 2 cores while one is measured (and a
    # contender would start its pass with a queue the others' turns let it fill).
    factories = {
        "nbtrain 1 process": lambda: NbtrainReader(SpinSequence(n), workers=1),
        "nbtrain 2 processes": lambda: NbtrainReader(SpinSequence(n), workers=2),
        "nbtrain 2 threads": lambda: NbtrainReader(SpinSequence(n), workers=2,
                                                   use_multiprocessing=False),
        "keras 2 processes": lambda: KerasReader(SpinPyDataset(n), workers=2),
    }
    scaling_before = machine_scaling()
    times: dict[str, list[float]] = {name: [] for name in factories}
    waited: list[float] = []
    for _ in range(rounds):
        for name, factory in factories.items():
            reader = factory()
            try:
                times[name].append(reader.pass_seconds())
                if name == "nbtrain 2 processes":
                    waited += reader.waited
            finally:
                reader.close()
    med = {name: statistics.median(t) for name, t in times.items()}
    best = {name: min(t) for name, t in times.items()}
    print(f"(b) GIL-bound __getitem__ ({SPIN} Python iterations), {n} batches a pass, "
          f"median of {rounds}")
    for name, s in med.items():
        print(f"    {name:<20} {n / s:7.1f} batches/s")
    ratio = med["nbtrain 1 process"] / med["nbtrain 2 processes"]
    print(f"    ratio 2 processes / 1 process: {ratio:.2f}x   (goal >= 1.6x); fastest passes: "
          f"{best['nbtrain 1 process'] / best['nbtrain 2 processes']:.2f}x")
    print(f"    context: the 2 workers waited for a CPU {statistics.median(waited):.0%} of "
          f"the time (other load); 2 plain Python processes ran {scaling_before:.2f}x as fast "
          f"as 1 just before, {machine_scaling():.2f}x just after")
    print(f"    nbtrain 2 processes / keras 2 processes: "
          f"{med['keras 2 processes'] / med['nbtrain 2 processes']:.2f}x")


class EpochTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seconds: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._t = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._t)


def small_model():
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    return model


def model_steps_per_second(model, steps: int = 300) -> float:
    x = np.zeros((32, 8), np.float32)
    y = np.zeros((32, 1), np.float32)
    model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    t = time.perf_counter()
    model.fit(np.tile(x, (steps, 1)), np.tile(y, (steps, 1)), batch_size=32, epochs=1, verbose=0)
    return steps / (time.perf_counter() - t)


def bench_training(rounds: int) -> None:
    if not hasattr(nbtrain, "fit_generator"):
        print("(c) skipped: nbtrain.fit_generator does not exist yet")
        return
    model_speed = model_steps_per_second(small_model())
    # Keras restarts its enqueuer every epoch, so its cost per step falls as the
    # epoch grows; the data caps both at 400 steps/s.  The goal is for 100 steps.
    for steps in (100, 400):
        train_race(steps, rounds, model_speed)


def train_race(steps: int, rounds: int, model_speed: float) -> None:
    epochs = 4
    results: dict[str, list[float]] = {"nbtrain.fit_generator": [], "keras model.fit": []}
    for _ in range(rounds):
        timer = EpochTimer()
        nbtrain.fit_generator(small_model(), IOSequence(steps), epochs=epochs, workers=4,
                              verbose=0, callbacks=[timer])
        results["nbtrain.fit_generator"] += [steps / s for s in timer.seconds[1:]]
        timer = EpochTimer()
        small_model().fit(IOPyDataset(steps, workers=4), epochs=epochs, verbose=0,
                          callbacks=[timer])
        results["keras model.fit"] += [steps / s for s in timer.seconds[1:]]
    med = {name: statistics.median(v) for name, v in results.items()}
    print(f"(c) training, I/O-bound Sequence (10 ms/batch), 4 worker threads, {steps} steps "
          f"an epoch, median of {rounds * (epochs - 1)} epochs (model alone: "
          f"{model_speed:.0f} steps/s)")
    for name, v in med.items():
        print(f"    {name:<22} {v:6.0f} steps/s")
    ratio = med["nbtrain.fit_generator"] / med["keras model.fit"]
    goal = "   (goals >= 340 steps/s and >= 1.3x)" if steps == 100 else ""
    print(f"    ratio nbtrain / keras: {ratio:.2f}x{goal}")


def child_pids() -> list[int]:
    """Live children of this process (worker processes of either contender)."""
    me, found = os.getpid(), []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if int(fields[1]) == me and fields[0] != "Z":
                    found.append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    return found


def pss_mb(pid: int) -> float:
    """Proportional set size of `pid` in MB (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class FitProbe(keras.callbacks.Callback):
    """Epoch end times from `t0`; during epoch 2, the most PSS the workers had together.
    A watchdog ends the process if no batch ends for `stall` seconds (Keras's
    forked workers can deadlock), saying which fit hung."""

    def __init__(self, t0: float, label: str, stall: float = 120.0):
        super().__init__()
        self.t0, self.ends, self.pss = t0, [], 0.0
        self.label, self.stall, self.last = label, stall, time.monotonic()
        self.done = threading.Event()
        threading.Thread(target=self._watch, name="bench-watchdog", daemon=True).start()

    def _watch(self):
        while not self.done.wait(5.0):
            if time.monotonic() - self.last > self.stall:
                print(f"    {self.label}: no batch for {self.stall:.0f} s: hung (Keras's forked "
                      "workers deadlock now and then); benchmark ended", flush=True)
                os._exit(3)

    def on_train_batch_end(self, batch, logs=None):
        self.last = time.monotonic()
        if len(self.ends) == 1 and batch % 4 == 2:  # epoch 2: not timed
            self.pss = max(self.pss, sum(pss_mb(pid) for pid in child_pids()))

    def on_epoch_end(self, epoch, logs=None):
        self.ends.append(time.perf_counter())


D_EPOCHS, D_SAMPLES = 5, 640


def fit_once(name: str, n: int, folder: str) -> dict:
    """One fit of (d) in this (fresh) process: `nbtrain` or `keras`, N workers;
    the first-epoch and later-epoch times, the workers' PSS, the shutdown time."""
    import npy_generator as gen

    ids, labels = gen.sample_ids(D_SAMPLES)
    model = gen.model()
    data = gen.DataGenerator(ids, labels, folder, workers=n, use_multiprocessing=True)
    t0 = time.perf_counter()
    probe = FitProbe(t0, f"N={n} {name}", stall=60.0)
    if name == "nbtrain":
        nbtrain.fit_generator(model, data, epochs=D_EPOCHS, workers=n, use_multiprocessing=True,
                              verbose=0, callbacks=[probe])
    else:
        model.fit(data, epochs=D_EPOCHS, verbose=0, callbacks=[probe])
    returned = time.perf_counter()
    probe.done.set()
    ends = [t0, *probe.ends]
    later = [b - a for a, b in zip(ends[2:], ends[3:])]
    return {"first": ends[1] - t0, "later": statistics.median(later), "pss": probe.pss,
            "shutdown": returned - ends[-1]}


def fit_in_child(name: str, n: int, folder: str, timeout: float = 600.0) -> dict | None:
    """`fit_once` in a fresh Python process (a new kernel's first fit); None if it
    hung (Keras's forked workers deadlock now and then: the watchdog ends it)."""
    import json
    import signal
    import subprocess
    import sys

    cmd = [sys.executable, os.path.abspath(__file__), "--fit-child", name, str(n), folder]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return None
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # forked workers left by a hung fit
        except ProcessLookupError:
            pass
    for line in out.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    return None


def bench_keras_module(rounds: int) -> None:
    import tempfile

    import npy_generator as gen

    with tempfile.TemporaryDirectory(prefix="nbtrain-bench-") as folder:
        gen.write_samples(folder, D_SAMPLES)
        steps = D_SAMPLES // 32
        print(f"(d) keras.utils.Sequence in a module importing keras, .npy per sample "
              f"({D_SAMPLES} samples, {steps} batches of 32 x 32x32x32x1 float32), {D_EPOCHS} "
              f"epochs a fit, {rounds} fits each, alternating, each fit in a fresh process "
              "(a new kernel's first fit); PSS sampled in epoch 2")
        print(f"    {'':<3}{'first epoch':>24}  {'later epochs':>24}  {'worker PSS':>24}")
        print(f"    {'N':<3}{'nbtrain':>8}{'keras':>8}{'ratio':>8}  {'nbtrain':>8}{'keras':>8}"
              f"{'ratio':>8}  {'nbtrain':>8}{'keras':>8}{'ratio':>8}")
        shutdown, hangs = {}, {"nbtrain": 0, "keras": 0}
        for n in (2, 4, 6):
            got = {"nbtrain": [], "keras": []}
            for r in range(rounds):
                order = ("nbtrain", "keras") if r % 2 == 0 else ("keras", "nbtrain")
                for name in order:
                    for _ in range(3):  # a hung fit is counted and run again
                        result = fit_in_child(name, n, folder)
                        if result is not None:
                            got[name].append(result)
                            break
                        hangs[name] += 1
            med = {name: {k: statistics.median(v[k] for v in runs) for k in runs[0]}
                   for name, runs in got.items() if runs}
            if len(med) < 2:
                print(f"    {n:<3}no result: every try hung")
                continue
            nb, kr = med["nbtrain"], med["keras"]
            print(f"    {n:<3}{nb['first']:7.2f}s{kr['first']:7.2f}s{kr['first'] / nb['first']:7.2f}x  "
                  f"{nb['later']:7.3f}s{kr['later']:7.3f}s{kr['later'] / nb['later']:7.2f}x  "
                  f"{nb['pss']:6.0f}MB{kr['pss']:6.0f}MB{nb['pss'] / max(kr['pss'], 1e-9):7.2f}x")
            shutdown[n] = (nb["shutdown"], kr["shutdown"])
        print("    from the last epoch's end to fit's return (workers shut down): " + ", ".join(
            f"N={n} nbtrain {a:.2f} s, keras {b:.2f} s" for n, (a, b) in shutdown.items()))
        print(f"    fits that hung and were run again: nbtrain {hangs['nbtrain']}, "
              f"keras {hangs['keras']}")
        print("    goals: first-epoch ratio (keras / nbtrain) >= 1 at every N; later epochs "
              ">= 4x; PSS ratio (nbtrain / keras) <= 1.5x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="a,b,c,d", help="comma-separated subset of a,b,c,d")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--fit-child", nargs=3, metavar=("NAME", "N", "FOLDER"),
                        help=argparse.SUPPRESS)  # (d): one fit in this process
    args = parser.parse_args()
    if args.fit_child:
        import json

        name, n, folder = args.fit_child
        print("RESULT " + json.dumps(fit_once(name, int(n), folder)), flush=True)
        os._exit(0)  # workers and threads are stopped; skip TensorFlow's slow teardown
    chosen = set(args.only.split(","))
    for key, bench in (("a", bench_transport), ("b", bench_cpu), ("c", bench_training),
                       ("d", bench_keras_module)):
        if key in chosen:
            t = time.perf_counter()
            bench(args.rounds)
            print(f"    ({time.perf_counter() - t:.0f} s)")


if __name__ == "__main__":
    main()
