"""Process workers: OrderedEnqueuer and GeneratorEnqueuer with use_multiprocessing=True.

Every test must leave no child process and no shared-memory segment behind
(checked by the autouse fixture below).  Datasets defined here are pickled
by reference (workers import this module); the `python -c` tests cover
datasets defined in `__main__`, pickled by value.
"""

from __future__ import annotations

import collections
import multiprocessing
import os
import random
import select
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

from nbtrain.data import GeneratorEnqueuer, OrderedEnqueuer, Sequence
from nbtrain.data._processes import shm
from nbtrain.data._processes.pickling import RemoteTraceback
from nbtrain.data._processes.pool import ProcessSequencePool

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


# -- leak checks ------------------------------------------------------------------------
def children(pid: int | None = None) -> set[int]:
    """Live (or zombie) children of `pid`, except multiprocessing's resource tracker."""
    pid = os.getpid() if pid is None else pid
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            if ppid != pid:
                continue
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if b"resource_tracker" in f.read():
                    continue
        except (OSError, IndexError, ValueError):
            continue
        found.add(int(entry))
    return found


def segments(pid: int | None = None) -> set[str]:
    """Our shared-memory segments, those of process `pid` (this one by default)."""
    prefix = f"{shm.PREFIX}{os.getpid() if pid is None else pid}_"
    return {n for n in os.listdir("/dev/shm") if n.startswith(prefix)}


@pytest.fixture(autouse=True)
def leaves_nothing_behind():
    before = children()
    yield
    assert multiprocessing.active_children() == []
    assert children() - before == set(), "worker processes outlived the test"
    assert segments() == set(), "shared-memory segments outlived the test"


def read(batches, n: int) -> list:
    return [next(batches) for _ in range(n)]


# -- datasets -----------------------------------------------------------------------------
class Numbered(Sequence):
    """Batch i is (array full of i, epoch, pid); on_epoch_end bumps the epoch
    and may change the length."""

    def __init__(self, n: int = 10, grow: int = 0):
        self.n, self.grow, self.epoch = n, grow, 0

    def __len__(self):
        return self.n

    def __getitem__(self, index):
        if not 0 <= index < self.n:
            raise IndexError(index)
        return np.full((2, 3), index, np.float32), self.epoch, os.getpid()

    def on_epoch_end(self):
        self.epoch += 1
        self.n += self.grow


class BatchError(ValueError):
    pass


class NeedsTwo(Exception):
    def __init__(self, a, b):
        super().__init__(f"{a}-{b}")


class Failing(Numbered):
    def __init__(self, bad: int, exc_type: type = BatchError):
        super().__init__(20)
        self.bad, self.exc_type = bad, exc_type

    def __getitem__(self, index):
        if index == self.bad:
            if self.exc_type is NeedsTwo:
                raise NeedsTwo("x", "y")
            raise self.exc_type(f"batch {index} is broken")
        return super().__getitem__(index)


class Unloadable(Numbered):
    def __setstate__(self, state):
        raise LookupError("this dataset cannot be loaded in a worker")


class Structured(Sequence):
    def __len__(self):
        return 6

    def __getitem__(self, i):
        big = np.arange(1000 * (i + 1), dtype=np.float64).reshape(-1, 10)
        return {
            "x": [big, big[:, ::3], np.asfortranarray(big)],
            "meta": ("batch", i, None, np.array(["a", None], dtype=object)),
            "empty": np.zeros((0, 4), np.int16),
            "scalar": np.array(3.5),
        }, Pair(np.ones(i), np.int8(i))


Pair = collections.namedtuple("Pair", "a b")


class FifoThenSleep(Sequence):
    """Tells the test (through a FIFO) that it started a batch, then works on it for a minute."""

    def __init__(self, fifo: str):
        self.fifo = fifo

    def __len__(self):
        return 100

    def __getitem__(self, i):
        with open(self.fifo, "w") as f:
            f.write("x")
        time.sleep(60)
        return i


class ReportsModules(Numbered):
    def __getitem__(self, index):
        return "tensorflow" in sys.modules, "keras" in sys.modules


def counter(start: int, stop: int | None = None, step: int = 1):
    i = start
    while stop is None or i < stop:
        yield np.array([i])
        i += step


def random_draws(n: int):
    for _ in range(n):
        yield os.getpid(), random.random(), int(np.random.randint(2**31))


def signalling_counter(fifo: str, after: int):
    """Counts; tells the test through a FIFO when it is asked for item `after`."""
    i = 0
    while True:
        if i == after:
            with open(fifo, "w") as f:
                f.write("x")
        yield np.array([i])
        i += 1


def failing_generator():
    yield np.zeros(1)
    raise BatchError("generator broke")


# -- OrderedEnqueuer with processes ------------------------------------------------------------
def test_batches_arrive_in_order_pass_after_pass_from_persistent_workers():
    enqueuer = OrderedEnqueuer(Numbered(10), use_multiprocessing=True)
    enqueuer.start(workers=2, max_queue_size=5)
    pids = set(enqueuer._pool.pids)
    try:
        batches = read(enqueuer.get(), 30)
        after = set(enqueuer._pool.pids)
    finally:
        enqueuer.stop()
    assert [int(b[0][0, 0]) for b in batches] == list(range(10)) * 3
    assert [b[1] for b in batches] == [0] * 10 + [1] * 10 + [2] * 10
    # the same workers all along (a free worker takes the next batch: under load one of
    # the two may serve every batch, so which served is not asserted)
    assert after == pids and {b[2] for b in batches} <= pids
    assert enqueuer.sequence.epoch == 3  # on_epoch_end ran in the parent, after each pass


def test_shuffled_passes_are_permutations_in_the_cursor_order():
    enqueuer = OrderedEnqueuer(Numbered(20), use_multiprocessing=True, shuffle=True)
    enqueuer.start(workers=2)
    orders = []
    try:
        batches = enqueuer.get()
        for _ in range(3):
            expected = list(enqueuer.cursor.order)
            got = [int(b[0][0, 0]) for b in read(batches, 20)]
            assert got == expected
            orders.append(got)
    finally:
        enqueuer.stop()
    assert all(sorted(o) == list(range(20)) for o in orders)
    assert len({tuple(o) for o in orders}) > 1


def test_on_epoch_end_changes_reach_the_workers_before_the_next_pass():
    enqueuer = OrderedEnqueuer(Numbered(3, grow=2), use_multiprocessing=True)
    enqueuer.start(workers=2, max_queue_size=10)
    try:
        batches = read(enqueuer.get(), 3 + 5 + 7)
    finally:
        enqueuer.stop()
    assert [(int(b[0][0, 0]), b[1]) for b in batches] == (
        [(i, 0) for i in range(3)] + [(i, 1) for i in range(5)] + [(i, 2) for i in range(7)]
    )


def test_stop_and_start_again_continues_at_the_next_batch():
    enqueuer = OrderedEnqueuer(Numbered(10), use_multiprocessing=True)
    enqueuer.start(workers=1)
    first = read(enqueuer.get(), 4)
    enqueuer.stop()
    assert not enqueuer.is_running()
    enqueuer.start(workers=2)
    try:
        second = read(enqueuer.get(), 4)
    finally:
        enqueuer.stop()
    assert [int(b[0][0, 0]) for b in first + second] == list(range(8))


def test_worker_exception_arrives_as_its_type_with_the_worker_traceback():
    enqueuer = OrderedEnqueuer(Failing(bad=3), use_multiprocessing=True)
    enqueuer.start(workers=2)
    try:
        batches = enqueuer.get()
        read(batches, 3)
        with pytest.raises(BatchError, match="batch 3 is broken") as info:
            next(batches)
    finally:
        enqueuer.stop()
    cause = info.value.__cause__
    assert isinstance(cause, RemoteTraceback)
    assert "in __getitem__" in str(cause) and "BatchError" in str(cause)
    assert any("batch 3" in note for note in info.value.__notes__)


def test_an_exception_that_cannot_be_rebuilt_becomes_a_runtime_error_naming_it():
    enqueuer = OrderedEnqueuer(Failing(bad=0, exc_type=NeedsTwo), use_multiprocessing=True)
    enqueuer.start(workers=1)
    try:
        with pytest.raises(RuntimeError, match="NeedsTwo: x-y") as info:
            next(enqueuer.get())
    finally:
        enqueuer.stop()
    assert "raise NeedsTwo" in str(info.value.__cause__)


def test_a_dataset_that_fails_to_load_in_the_worker_fails_its_first_batch():
    enqueuer = OrderedEnqueuer(Unloadable(5), use_multiprocessing=True)
    enqueuer.start(workers=1)
    try:
        with pytest.raises(LookupError, match="cannot be loaded in a worker"):
            next(enqueuer.get())
    finally:
        enqueuer.stop()


def test_an_unpicklable_sequence_is_a_type_error_naming_the_attribute_before_any_process_starts(
        tmp_path):
    sequence = Numbered(5)
    with open(tmp_path / "log.txt", "w") as log:
        sequence.files = {"log": log}  # a file open for writing cannot be pickled
        enqueuer = OrderedEnqueuer(sequence, use_multiprocessing=True)
        with pytest.raises(TypeError, match="use_multiprocessing=False") as info:
            enqueuer.start(workers=2)
    assert "`Numbered.files['log']` cannot be pickled" in str(info.value)
    assert not enqueuer.is_running()


def test_locks_and_fresh_generators_in_a_sequence_are_sent_as_new_ones():
    def batches():  # a generator the sequence holds but never starts
        yield from range(3)

    sequence = Numbered(4)
    sequence.lock, sequence.state = threading.Lock(), {"cond": threading.RLock()}
    sequence.pending = batches()
    enqueuer = OrderedEnqueuer(sequence, use_multiprocessing=True)
    enqueuer.start(workers=2)
    try:
        got = read(enqueuer.get(), 4)
    finally:
        enqueuer.stop()
    assert [int(b[0][0, 0]) for b in got] == [0, 1, 2, 3]
    assert not sequence.lock.locked() and list(sequence.pending) == [0, 1, 2]


def test_nested_structures_round_trip_through_shared_memory():
    enqueuer = OrderedEnqueuer(Structured(), use_multiprocessing=True)
    enqueuer.start(workers=2, max_queue_size=3)
    try:
        got = read(enqueuer.get(), 12)  # sizes grow batch after batch: slots are replaced
    finally:
        enqueuer.stop()
    for index, (batch, pair) in enumerate(got):
        expected, expected_pair = Structured()[index % 6]
        for a, b in zip(batch["x"], expected["x"]):
            np.testing.assert_array_equal(a, b)
            assert a.flags.writeable and a.flags.owndata
        assert batch["meta"][:3] == expected["meta"][:3]
        assert batch["meta"][3].tolist() == ["a", None]
        assert batch["empty"].shape == (0, 4) and batch["empty"].dtype == np.int16
        assert batch["scalar"].shape == () and batch["scalar"] == 3.5
        assert type(pair) is Pair and pair.b == index % 6
        np.testing.assert_array_equal(pair.a, expected_pair.a)


def test_shared_memory_stays_bounded_by_the_slots():
    enqueuer = OrderedEnqueuer(Numbered(50), use_multiprocessing=True)
    enqueuer.start(workers=2, max_queue_size=10)
    try:
        batches = enqueuer.get()
        for _ in range(100):
            next(batches)
            assert len(segments()) <= 2 * 2 + 2  # two slots a worker, and at most two states
    finally:
        enqueuer.stop()


def test_transform_runs_in_the_parent_on_every_batch():
    enqueuer = OrderedEnqueuer(Numbered(4), use_multiprocessing=True,
                               transform=lambda b: (b[0] * 2, os.getpid()))
    enqueuer.start(workers=2)
    try:
        got = read(enqueuer.get(), 4)
    finally:
        enqueuer.stop()
    assert [int(x[0, 0]) for x, _ in got] == [0, 2, 4, 6]
    assert {pid for _, pid in got} == {os.getpid()}


def test_workers_do_not_import_tensorflow():
    enqueuer = OrderedEnqueuer(ReportsModules(2), use_multiprocessing=True)
    enqueuer.start(workers=1)
    try:
        assert next(enqueuer.get()) == (False, False)
    finally:
        enqueuer.stop()


# -- failures and shutdown --------------------------------------------------------------------
def test_a_worker_killed_mid_epoch_is_a_clear_error_within_seconds():
    enqueuer = OrderedEnqueuer(Numbered(10_000), use_multiprocessing=True)
    enqueuer.start(workers=2, max_queue_size=4)
    victim = enqueuer._pool.pids[0]
    try:
        batches = enqueuer.get()
        next(batches)
        os.kill(victim, signal.SIGKILL)
        killed = time.monotonic()
        with pytest.raises(RuntimeError, match=rf"pid {victim}\) was killed by SIGKILL"):
            while time.monotonic() - killed < 30:
                next(batches)
        assert time.monotonic() - killed < 5
    finally:
        enqueuer.stop()


def test_a_killed_generator_worker_is_a_clear_error():
    enqueuer = GeneratorEnqueuer(counter(0), use_multiprocessing=True)
    enqueuer.start(workers=1, max_queue_size=2)
    try:
        items = enqueuer.get()
        next(items)
        victim = enqueuer._backend.pids[0]
        os.kill(victim, signal.SIGKILL)
        with pytest.raises(RuntimeError, match=rf"worker 0 \(pid {victim}\) was killed"):
            for _ in range(10_000):
                next(items)
    finally:
        enqueuer.stop()


def test_stop_ends_a_worker_stuck_in_a_batch_and_releases_the_consumer(tmp_path):
    fifo = str(tmp_path / "started")
    os.mkfifo(fifo)
    enqueuer = OrderedEnqueuer(FifoThenSleep(fifo), use_multiprocessing=True)
    enqueuer.start(workers=1, max_queue_size=1)
    outcome = []

    def consume():
        outcome.extend(enqueuer.get())  # ends when stop() cancels the pending batch

    consumer = threading.Thread(target=consume)
    consumer.start()
    with open(fifo) as f:  # the worker is inside __getitem__ now
        assert f.read(1) == "x"
    began = time.monotonic()
    with pytest.warns(RuntimeWarning, match="did not stop within 0.5 s while reading batch 0: "
                                            "terminated"):
        enqueuer.stop(timeout=0.5)
    consumer.join(5)
    assert not consumer.is_alive() and outcome == []
    assert time.monotonic() - began < 5


def test_twenty_start_stop_cycles_leak_nothing():
    def fds():
        return len(os.listdir("/proc/self/fd"))

    threads, files = threading.active_count(), fds()
    for cycle in range(20):
        enqueuer = OrderedEnqueuer(Numbered(4), use_multiprocessing=True)
        enqueuer.start(workers=1 + cycle % 2, max_queue_size=2)
        assert int(next(enqueuer.get())[0][0, 0]) == 0
        enqueuer.stop()
        assert segments() == set() and children() == set()
    assert threading.active_count() == threads
    assert fds() <= files + 2  # the resource tracker's pipe may open once


def test_stop_removes_a_segment_a_killed_worker_left_empty():
    pool = ProcessSequencePool(Numbered(2), workers=1)
    empty = f"/dev/shm/{pool.prefix}0_7_1"  # as if killed between shm_open and ftruncate
    os.close(os.open(empty, os.O_CREAT | os.O_RDWR, 0o600))
    pool.shutdown()
    assert not os.path.exists(empty)


def test_pool_reports_worker_start_up_times():
    pool = ProcessSequencePool(Numbered(2), workers=2)
    try:
        assert pool.wait_ready(30)
        assert len(pool.startup_times) == 2 and all(0 < t < 30 for t in pool.startup_times)
        assert pool.submit(1).result(30)[0][0, 0] == 1
    finally:
        pool.shutdown()


# -- GeneratorEnqueuer with processes ------------------------------------------------------------
def test_a_finite_generator_in_one_process_keeps_its_order_and_ends():
    enqueuer = GeneratorEnqueuer(counter(0, 7), use_multiprocessing=True)
    enqueuer.start(workers=1, max_queue_size=3)
    try:
        got = [int(x[0]) for x in enqueuer.get()]
    finally:
        enqueuer.stop()
    assert got == list(range(7))


def test_two_generator_workers_each_run_a_copy_and_a_warning_says_so():
    enqueuer = GeneratorEnqueuer(counter(0, 5), use_multiprocessing=True)
    with pytest.warns(UserWarning, match="duplicated"):
        enqueuer.start(workers=2)
    try:
        got = sorted(int(x[0]) for x in enqueuer.get())
    finally:
        enqueuer.stop()
    assert got == sorted(list(range(5)) * 2)


def test_generator_workers_are_seeded_apart_from_random_seed():
    def draws(seed):
        enqueuer = GeneratorEnqueuer(random_draws(3), use_multiprocessing=True, random_seed=seed)
        with pytest.warns(UserWarning):
            enqueuer.start(workers=2)
        try:
            items = list(enqueuer.get())
        finally:
            enqueuer.stop()
        by_worker = collections.defaultdict(list)
        for pid, a, b in items:
            by_worker[pid].append((a, b))
        return sorted(by_worker.values())

    first = draws(7)
    assert len(first) == 2 and first[0] != first[1]
    assert draws(7) == first


def test_a_started_generator_is_a_type_error_that_says_what_to_do():
    generator = counter(0)
    next(generator)
    enqueuer = GeneratorEnqueuer(generator, use_multiprocessing=True)
    with pytest.raises(TypeError, match="freshly created generator.*use_multiprocessing=False"):
        enqueuer.start(workers=1)


def test_picklable_iterators_and_generator_expressions_work():
    values = [np.array([i]) for i in range(4)]
    for source in (iter(values), (v * 10 for v in values)):
        enqueuer = GeneratorEnqueuer(source, use_multiprocessing=True)
        enqueuer.start(workers=1)
        try:
            got = [int(x[0]) for x in enqueuer.get()]
        finally:
            enqueuer.stop()
        assert got in ([0, 1, 2, 3], [0, 10, 20, 30])


def test_a_generator_exception_arrives_as_its_type():
    enqueuer = GeneratorEnqueuer(failing_generator(), use_multiprocessing=True)
    enqueuer.start(workers=1)
    try:
        items = enqueuer.get()
        next(items)
        with pytest.raises(BatchError, match="generator broke") as info:
            next(items)
    finally:
        enqueuer.stop()
    assert "failing_generator" in str(info.value.__cause__)


def test_stop_keeps_produced_items_in_leftover(tmp_path):
    fifo = str(tmp_path / "produced")
    os.mkfifo(fifo)
    enqueuer = GeneratorEnqueuer(signalling_counter(fifo, 6), use_multiprocessing=True)
    enqueuer.start(workers=1, max_queue_size=3)
    items = enqueuer.get()
    consumed = [int(next(items)[0]) for _ in range(2)]
    with open(fifo) as f:  # the worker has produced items 0 to 5
        assert f.read(1) == "x"
    enqueuer.stop()
    left = [int(x[0]) for x in enqueuer.leftover]
    assert consumed == [0, 1]
    assert left[:4] == [2, 3, 4, 5] and left == list(range(2, 2 + len(left)))
    assert not enqueuer.is_running()


def test_starting_the_same_generator_again_warns_that_it_replays():
    generator = counter(0, 3)
    enqueuer = GeneratorEnqueuer(generator, use_multiprocessing=True)
    enqueuer.start(workers=1)
    first = [int(x[0]) for x in enqueuer.get()]
    enqueuer.stop()
    again = GeneratorEnqueuer(generator, use_multiprocessing=True)
    with pytest.warns(UserWarning, match="replay"):
        again.start(workers=1)
    try:
        assert [int(x[0]) for x in again.get()] == first == [0, 1, 2]
    finally:
        again.stop()


# -- __main__, scripts and Ctrl-C, in subprocesses -------------------------------------------------
CHECKS = """
import multiprocessing, os
def leftovers():
    me = os.getpid()
    kids = []
    for e in os.listdir("/proc"):
        try:
            stat = open(f"/proc/{e}/stat").read()
            if int(stat.rsplit(")", 1)[1].split()[1]) == me and (
                    b"resource_tracker" not in open(f"/proc/{e}/cmdline", "rb").read()):
                kids.append(e)
        except (OSError, ValueError, IndexError):
            pass
    shm = [n for n in os.listdir("/dev/shm") if n.startswith(f"nbtrain_{me}_")]
    return multiprocessing.active_children() + kids + shm
"""


def run_python(code: str, timeout: float = 120, **kwargs) -> subprocess.CompletedProcess:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=REPO)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=REPO, **kwargs)


def test_a_sequence_and_exception_defined_in_main_work_in_workers():
    result = run_python(CHECKS + """
import numpy as np
import nbtrain

class Shifted(nbtrain.Sequence):          # defined in __main__: shipped by value
    def __init__(self):
        self.shift = 0
    def __len__(self):
        return 6
    def __getitem__(self, i):
        if i == 5 and self.shift == 100:
            raise MainError("from main")
        return np.full(3, i + self.shift)
    def on_epoch_end(self):
        self.shift += 100

class MainError(Exception):
    pass

enqueuer = nbtrain.OrderedEnqueuer(Shifted(), use_multiprocessing=True)
enqueuer.start(workers=2)
batches = enqueuer.get()
got = [int(next(batches)[0]) for _ in range(11)]
try:
    next(batches)
except MainError as exc:
    caught = type(exc) is MainError
enqueuer.stop()
print(got, caught, leftovers())
""")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "[0, 1, 2, 3, 4, 5, 100, 101, 102, 103, 104] True []"
    ), result.stderr


def test_a_script_is_not_run_again_in_the_workers(tmp_path):
    marker = tmp_path / "imports"
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(f"""
        with open({str(marker)!r}, "a") as f:   # top-level code: must run once only
            f.write("x")
        import nbtrain

        class Plain(nbtrain.Sequence):
            def __len__(self):
                return 3
            def __getitem__(self, i):
                return i

        if __name__ == "__main__":
            e = nbtrain.OrderedEnqueuer(Plain(), use_multiprocessing=True)
            e.start(workers=2)
            print([next(e.get()) for _ in range(1)])
            e.stop()
    """))
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                            timeout=60, env=dict(os.environ, PYTHONPATH=REPO))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[0]"
    assert marker.read_text() == "x"


def test_ctrl_c_in_the_consumer_shuts_every_worker_down():
    code = CHECKS + """
import sys, time
import nbtrain

class Slow(nbtrain.Sequence):
    def __len__(self):
        return 10_000
    def __getitem__(self, i):
        time.sleep(0.01)
        return i

enqueuer = nbtrain.OrderedEnqueuer(Slow(), use_multiprocessing=True)
enqueuer.start(workers=2)
try:
    for i, batch in enumerate(enqueuer.get()):
        if i == 2:
            print("reading", flush=True)
except KeyboardInterrupt:
    print("interrupted", flush=True)
finally:
    enqueuer.stop()
print(leftovers(), flush=True)
"""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=REPO)
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
    try:
        if proc.stdout.readline().strip() != "reading":
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail(proc.communicate()[1])
        os.killpg(proc.pid, signal.SIGINT)  # as a terminal (or Jupyter) does: the whole group
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 0, err
    assert out.split() == ["interrupted", "[]"], err
    assert "Traceback" not in err  # the workers ignored the Ctrl-C


def test_training_with_a_main_sequence_on_worker_processes():
    result = run_python(CHECKS + """
import numpy as np
import nbtrain
if not hasattr(nbtrain, "fit_generator"):
    print("no engine")
    raise SystemExit
import keras

class Lines(nbtrain.Sequence):
    def __len__(self):
        return 8
    def __getitem__(self, i):
        rng = np.random.default_rng(i)
        x = rng.standard_normal((16, 3)).astype("float32")
        return x, x @ np.array([[1.0], [2.0], [3.0]], "float32")

model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
history = nbtrain.fit_generator(model, Lines(), epochs=3, workers=2, use_multiprocessing=True,
                                verbose=0)
losses = history.history["loss"]
print(len(losses), losses[-1] < losses[0], leftovers())
""", timeout=240)
    if result.stdout.strip() == "no engine":
        pytest.skip("nbtrain.fit_generator is not there yet")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "3 True []", result.stderr


def wait_exit(pid: int, timeout: float) -> bool:
    """Wait for any process (not only a child) to exit, through a pidfd."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([fd], [], [], timeout)[0])
    finally:
        os.close(fd)


@pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="needs pidfd_open (Linux)")
def test_workers_clean_up_and_exit_when_the_parent_is_killed():
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
        import os, signal
        import nbtrain

        class Plain(nbtrain.Sequence):
            def __len__(self):
                return 1000
            def __getitem__(self, i):
                return [i] * 100

        e = nbtrain.OrderedEnqueuer(Plain(), use_multiprocessing=True)
        e.start(workers=2)
        next(e.get())
        print(*e._pool.pids, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=dict(os.environ, PYTHONPATH=REPO))
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    pids = [int(p) for p in out.split()]
    assert len(pids) == 2
    for pid in pids:  # the workers see their parent die, remove every segment, exit
        assert wait_exit(pid, 15), f"process {pid} outlived its parent"
    assert segments(proc.pid) == set()
