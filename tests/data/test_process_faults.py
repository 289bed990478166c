"""Process workers when things go wrong: the parent's whole process group
killed, segments of dead processes, /dev/shm full, a worker killed, a real
Jupyter kernel shut down."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
import time

import keras
import numpy as np
import pytest
from helpers import BatchRecorder, make_data, make_model
from test_keras_datasets import DATAGEN
from test_processes import (  # noqa: F401 - leaves_nothing_behind is an autouse fixture
    REPO,
    Numbered,
    children,
    leaves_nothing_behind,
    segments,
    wait_exit,
)

import nbtrain
from nbtrain.data import OrderedEnqueuer, Sequence, SequenceCursor, WorkerLost
from nbtrain.data._processes import shm

needs_pidfd = pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="needs pidfd_open (Linux)")


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@needs_pidfd
def test_killing_the_parents_whole_process_group_leaves_no_segment():
    # What restart_kernel(now=True) / shutdown_kernel(now=True) do to a kernel.
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
        import time
        import numpy as np
        import nbtrain

        class Big(nbtrain.Sequence):
            def __len__(self):
                return 1000
            def __getitem__(self, i):
                time.sleep(0.05 * (i > 8))      # workers are busy when the group dies
                return np.full((256, 1024), i, np.float32)

        e = nbtrain.OrderedEnqueuer(Big(), use_multiprocessing=True)
        e.start(workers=2, max_queue_size=8)
        batches = e.get()
        for _ in range(6):
            next(batches)
        print(*e._pool.pids, flush=True)
        time.sleep(60)
    """)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        env=dict(os.environ, PYTHONPATH=REPO))
    try:
        pids = [int(p) for p in proc.stdout.readline().split()]
        assert len(pids) == 2, proc.stderr.read()
        assert segments(proc.pid)  # batches in flight
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
    for pid in pids:
        assert wait_exit(pid, 15), f"worker {pid} outlived its parent"
    assert segments(proc.pid) == set()


def test_a_pool_removes_the_segments_of_dead_processes_at_start():
    dead = dead_pid()
    orphan = f"/dev/shm/{shm.PREFIX}{dead}_abcdef_0_0_1"
    alive = f"/dev/shm/{shm.PREFIX}{os.getppid()}_abcdef_0_0_1"  # a live process's: kept
    for path in (orphan, alive):
        os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
    try:
        enqueuer = OrderedEnqueuer(Numbered(2), use_multiprocessing=True)
        enqueuer.start(workers=1)
        enqueuer.stop()
        assert not os.path.exists(orphan)
        assert os.path.exists(alive)
    finally:
        for path in (orphan, alive):
            if os.path.exists(path):
                os.unlink(path)


def test_no_room_for_the_dataset_state_names_the_dataset(monkeypatch):
    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", full)
    enqueuer = OrderedEnqueuer(Numbered(2), use_multiprocessing=True)
    with pytest.raises(OSError, match=r"No room in shared memory for the state of the dataset "
                                      r"Numbered \(pickled by value\) \(\d+ bytes\)"):
        enqueuer.start(workers=1)
    assert not enqueuer.is_running()


def test_after_a_worker_is_killed_a_restart_continues_at_the_exact_batch():
    cursor = SequenceCursor(Numbered(12), shuffle=True, seed=3)
    enqueuer = OrderedEnqueuer(cursor.sequence, use_multiprocessing=True, cursor=cursor)
    enqueuer.start(workers=2, max_queue_size=4)
    got = []
    try:
        batches = enqueuer.get()
        for _ in range(5):
            got.append(next(batches))
        order = list(cursor.order)
        os.kill(enqueuer._pool.pids[0], signal.SIGKILL)
        with pytest.raises(WorkerLost, match="was killed by SIGKILL"):
            while True:
                got.append(next(batches))
    finally:
        enqueuer.stop()
    enqueuer.start(workers=2, max_queue_size=4)  # fresh workers
    try:
        batches = enqueuer.get()
        got += [next(batches) for _ in range(12 - len(got) + 12)]
    finally:
        enqueuer.stop()
    indices = [int(x[0, 0]) for x, _, _ in got]
    assert indices[:12] == order  # the interrupted pass, each batch once, in its order
    assert sorted(indices[12:]) == list(range(12))  # then a whole new pass
    assert [epoch for _, epoch, _ in got] == [0] * 12 + [1] * 12


class ArrayBatches(Sequence):
    def __init__(self, x, y, batch_size=8):
        self.x, self.y, self.batch_size = x, y, batch_size

    def __len__(self):
        return len(self.x) // self.batch_size

    def __getitem__(self, i):
        s = slice(i * self.batch_size, (i + 1) * self.batch_size)
        return self.x[s], self.y[s]


class KillAWorker(keras.callbacks.Callback):
    """SIGKILLs one data worker process after batch `at` of the first epoch."""

    def __init__(self, at: int):
        super().__init__()
        self.at, self.epoch, self.killed = at, 0, None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.killed is None and (self.epoch, batch) == (0, self.at):
            self.killed = min(children())
            os.kill(self.killed, signal.SIGKILL)


def test_run_resume_after_a_killed_worker_continues_at_the_exact_batch():
    x, y = make_data(96)
    reference = make_model()
    expected = nbtrain.fit_generator(reference, ArrayBatches(x, y), epochs=2, workers=0,
                                     shuffle=False, verbose=0).history
    model, recorder, killer = make_model(), BatchRecorder(), KillAWorker(at=4)
    run = nbtrain.fit(model, ArrayBatches(x, y), epochs=2, workers=2, use_multiprocessing=True,
                      max_queue_size=2, shuffle=False, callbacks=[killer, recorder],
                      display=False)
    with pytest.raises(WorkerLost, match=r"was killed by SIGKILL") as lost:
        run.wait(120)
    assert f"(pid {killer.killed})" in str(lost.value)
    assert run.state == "failed" and run.allowed_actions() == {"resume"}
    assert run.resume()
    history = run.wait(120)
    assert run.state == "finished"
    assert recorder.pairs == [(e, b) for e in range(2) for b in range(12)]  # none twice, none lost
    np.testing.assert_allclose(history.history["loss"], expected["loss"], rtol=1e-5)
    for got, want in zip(model.get_weights(), reference.get_weights()):
        np.testing.assert_allclose(got, want, rtol=1e-5)


# -- a real Jupyter kernel ----------------------------------------------------------------
@needs_pidfd
def test_a_graceful_kernel_shutdown_is_prompt_and_clean_after_process_workers(tmp_path):
    manager = pytest.importorskip("jupyter_client.manager")
    (tmp_path / "datagen.py").write_text(DATAGEN)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=REPO)
    # Generous: a kernel that loaded TensorFlow takes seconds to exit on a busy machine
    # even without nbtrain; what is measured below is that it exits by itself and
    # what nbtrain's exit hook costs.
    km = manager.KernelManager(kernel_name="python3", shutdown_wait_time=60)
    km.start_kernel(env=env, cwd=str(tmp_path), extra_arguments=["--HistoryManager.enabled=False"])
    kernel = km.provisioner.process
    client = km.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=120)
        outputs: list[str] = []

        def collect(msg):
            if msg["msg_type"] == "stream" and msg["content"]["name"] == "stdout":
                outputs.append(msg["content"]["text"])
            elif msg["msg_type"] == "error":
                outputs.append("\n".join(msg["content"]["traceback"]))

        reply = client.execute_interactive(textwrap.dedent(f"""
            import atexit, sys, time
            stamps = open({str(tmp_path / "stamps")!r}, "w")
            atexit.register(lambda: stamps.write(f"{{time.monotonic()}}\\n") and stamps.close())
            sys.path.insert(0, {str(tmp_path)!r})
            import datagen, nbtrain
            datagen.write_samples({str(tmp_path)!r}, 8)
            gen = datagen.DataGenerator(list(range(8)), {{i: i % 3 for i in range(8)}},
                                        {str(tmp_path)!r})
            enqueuer = nbtrain.OrderedEnqueuer(gen, use_multiprocessing=True)
            enqueuer.start(workers=2)           # left running: the kernel's exit stops it
            batches = enqueuer.get()
            print(float(next(batches)[0][1, 0, 0]), *enqueuer._pool.pids)
            atexit.register(lambda: stamps.write(f"{{time.monotonic()}}\\n"))  # runs first
        """), timeout=240, output_hook=collect)
        assert reply["content"]["status"] == "ok", outputs
    finally:
        client.stop_channels()
    text = "".join(outputs)
    first, *pids = text.split()
    assert first == "1.0"  # batch 0, sample 1
    began = time.monotonic()
    km.shutdown_kernel(now=False)
    took = time.monotonic() - began
    assert kernel.returncode == 0, f"SIGTERMed or killed after {took:.1f} s"
    for pid in map(int, pids):
        assert wait_exit(pid, 5), f"worker {pid} outlived the kernel"
    assert segments(kernel.pid) == set()
    before, after = map(float, (tmp_path / "stamps").read_text().split())
    assert after - before < 1.0, f"nbtrain's exit hook (stopping the workers) took {after - before:.2f} s"
