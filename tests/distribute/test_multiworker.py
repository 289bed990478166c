"""MultiWorkerMirroredStrategy with two worker processes on 127.0.0.1.

Each test starts `multiworker_script.py` twice (the chief and one worker, from
TF_CONFIG), steers the chief through its stdin and checks what every worker
reports: the (epoch, batch) pairs it trained, its states, weights and errors.
Every process is killed and reaped whatever happens.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).with_name("multiworker_script.py")
START_TIMEOUT = 120.0  # two TensorFlow start-ups on 2 busy cores


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


class Job:
    """Two workers of one job; the chief (index 0) is steered through its stdin."""

    def __init__(self, tmp_path: Path, **options):
        self.options = options
        ports = free_ports(2)
        cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
        self.procs: list[subprocess.Popen] = []
        self.events: list[list[dict]] = [[], []]
        self.text: list[list[str]] = [[], []]  # lines that are not events
        self._buffers = [b"", b""]
        self._seen = [0, 0]
        self.stderr = [tmp_path / f"worker{i}.err" for i in range(2)]
        for index in range(2):
            env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3",
                       TF_CONFIG=json.dumps({"cluster": cluster,
                                             "task": {"type": "worker", "index": index}}))
            with open(self.stderr[index], "wb") as err:
                self.procs.append(subprocess.Popen(
                    [sys.executable, str(SCRIPT), json.dumps(options)], env=env,
                    stdin=subprocess.PIPE if index == 0 else subprocess.DEVNULL,
                    stdout=subprocess.PIPE, stderr=err,
                ))

    def __enter__(self) -> Job:
        return self

    def __exit__(self, *exc) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
        for proc in self.procs:
            proc.wait(timeout=30)
            for pipe in (proc.stdin, proc.stdout):
                if pipe is not None:
                    pipe.close()

    def logs(self) -> str:
        tails = []
        for index, path in enumerate(self.stderr):
            lines = [line for line in path.read_text(errors="replace").splitlines()
                     if not line.startswith(("I0000", "WARNING: All log"))]
            tails.append(f"--- worker {index} stderr ---\n" + "\n".join(lines[-40:]))
        return "\n".join(tails)

    def _read(self, timeout: float) -> None:
        fds = {p.stdout.fileno(): i for i, p in enumerate(self.procs) if not p.stdout.closed}
        ready, _, _ = select.select(list(fds), [], [], timeout)
        for fd in ready:
            index = fds[fd]
            chunk = os.read(fd, 65536)
            if not chunk:
                self.procs[index].stdout.close()
                continue
            self._buffers[index] += chunk
            *lines, self._buffers[index] = self._buffers[index].split(b"\n")
            for line in lines:
                text = line.decode(errors="replace")
                if text.startswith("{"):
                    self.events[index].append(json.loads(text))
                elif text:
                    self.text[index].append(text)

    def expect(self, index: int, predicate, timeout: float = 60.0, what: str = "") -> dict:
        """The next event of worker `index` that satisfies `predicate`."""
        deadline = time.monotonic() + timeout
        while True:
            events = self.events[index]
            while self._seen[index] < len(events):
                event = events[self._seen[index]]
                self._seen[index] += 1
                if predicate(event):
                    return event
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.procs[index].stdout.closed:
                raise AssertionError(f"worker {index} never reported {what or predicate}; "
                                     f"last events {events[-3:]}\n{self.logs()}")
            self._read(min(remaining, 0.5))

    def started(self) -> dict:
        return self.expect(0, lambda e: e["event"] == "started", START_TIMEOUT, "its start")

    def at_batch(self, epoch: int, batch: int) -> dict:
        return self.expect(0, lambda e: e["event"] == "batch" and [e["epoch"], e["batch"]]
                           >= [epoch, batch], 60.0, f"batch {batch} of epoch {epoch}")

    def send(self, command: str, timeout: float = 60.0) -> dict:
        """Send a command to the chief and return its acknowledgement."""
        self.procs[0].stdin.write(f"{command}\n".encode())
        self.procs[0].stdin.flush()
        return self.expect(0, lambda e: e["event"] == "ack" and e["command"] == command,
                           timeout, f"an ack of {command!r}")

    def final(self, index: int, timeout: float = 60.0) -> dict:
        return self.expect(index, lambda e: e["event"] == "final", timeout, "its final report")

    def exit_code(self, index: int, timeout: float = 30.0) -> int:
        """Worker `index`'s exit code, once it has exited (reading its output meanwhile)."""
        deadline = time.monotonic() + timeout
        proc = self.procs[index]
        while not proc.stdout.closed and time.monotonic() < deadline:
            self._read(0.5)
        return proc.wait(timeout=max(0.1, deadline - time.monotonic()))

    def exit_codes(self, timeout: float = 30.0) -> list[int]:
        return [self.exit_code(index, timeout) for index in range(2)]


def every_pair(epochs: int, steps: int) -> list[list[int]]:
    return [[e, b] for e in range(epochs) for b in range(steps)]


@pytest.fixture(scope="module")
def reference():
    """Single-device training on the global batches (both workers' batches of a step)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    import nbtrain

    rng = np.random.default_rng(0)
    x = rng.standard_normal((512, 4)).astype("float32")
    y = (x @ np.array([[1.0], [2.0], [-1.0], [0.5]], dtype="float32")).astype("float32")

    class Global(nbtrain.Sequence):  # global batch j = worker 0's batch j, then worker 1's
        def __len__(self):
            return len(x) // 16

        def __getitem__(self, i):
            return x[i * 16:(i + 1) * 16], y[i * 16:(i + 1) * 16]

    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.05), "mse", metrics=["mae"])
    history = nbtrain.fit_generator(model, Global(), epochs=2, shuffle=False, verbose=0, workers=0,
                                    validation_data=Global())
    return {"weights": model.get_weights(), "history": history.history}


def assert_same_weights(finals, reference):
    for final in finals:
        for ours, theirs in zip(final["weights"], reference["weights"]):
            np.testing.assert_allclose(np.array(ours), theirs, rtol=1e-5, atol=1e-6)


def test_full_run_both_workers_finish_with_the_same_weights(tmp_path, reference):
    with Job(tmp_path, epochs=2, validation=True) as job:
        assert job.started()["steps"] == 32  # 64 batches of 8 rows, striped over 2 workers
        assert job.send("wait")["state"] == "finished"
        job.procs[0].stdin.close()  # the chief's program ends without close(): its exit ends the job
        finals = [job.final(0), job.final(1)]
        assert job.exit_codes() == [0, 0], job.logs()
    assert [f["state"] for f in finals] == ["finished", "finished"]
    assert finals[0]["pairs"] == finals[1]["pairs"] == every_pair(2, 32)
    assert finals[0]["weights"] == finals[1]["weights"]
    assert_same_weights(finals, reference)
    # losses and metrics are averaged over the global batch, as on one device
    for key in ("loss", "mae", "val_loss", "val_mae"):
        np.testing.assert_allclose(finals[0]["history"][key], reference["history"][key], rtol=1e-4)
    assert finals[0]["history"] == finals[1]["history"]
    # the chief shows the job (a text status outside a notebook); the other worker is headless
    assert any(line.startswith("nbtrain: finished") for line in job.text[0])
    assert job.text[1] == []


def test_stop_from_the_chief_ends_both_workers_at_the_same_batch(tmp_path):
    with Job(tmp_path, epochs=2, slow=0.02) as job:
        job.started()
        job.at_batch(0, 5)
        assert job.send("stop")["ok"] is True
        stopped = job.send("wait")
        assert stopped["state"] == "stopped"
        job.send("close")
        finals = [job.final(0), job.final(1)]
        assert job.exit_codes() == [0, 0], job.logs()
    chief, worker = finals
    assert chief["state"] == worker["state"] == "stopped"
    assert chief["pairs"] == worker["pairs"]
    last_epoch, last_batch = chief["pairs"][-1]
    assert last_epoch == 0 and 5 <= last_batch < 31  # mid-epoch, within two batches of the stop
    assert [stopped["epoch"], stopped["batch"]] == [0, last_batch + 1]
    assert ["running", "stopping", len(worker["pairs"])] in worker["states"]
    assert worker["states"][-1][:2] == ["stopping", "stopped"]


def test_pause_and_resume_and_resume_after_stop_at_the_exact_batch(tmp_path, reference):
    # exchanges time out after 3 s: the 4 s pause only lasts through the heartbeats
    with Job(tmp_path, epochs=2, slow=0.02, timeout=3.0) as job:
        job.started()
        job.at_batch(0, 4)
        assert job.send("pause")["ok"] is True
        time.sleep(4.0)
        held = job.send("status")
        time.sleep(0.5)
        assert job.send("status")["trained"] == held["trained"]  # nothing trains while paused
        assert held["state"] == "paused" and 4 <= held["trained"] < 32
        assert job.send("resume")["ok"] is True
        job.at_batch(1, 3)
        assert job.send("stop")["ok"] is True
        stopped = job.send("wait")
        assert stopped["state"] == "stopped" and stopped["epoch"] == 1
        assert job.send("resume")["ok"] is True
        assert job.send("wait")["state"] == "finished"
        job.send("close")
        finals = [job.final(0), job.final(1)]
        assert job.exit_codes() == [0, 0], job.logs()
    chief, worker = finals
    # every batch exactly once on both workers, across the pause and the stop
    assert chief["pairs"] == worker["pairs"] == every_pair(2, 32)
    assert worker["states"][:2] == [["running", "paused", held["trained"]],
                                    ["paused", "running", held["trained"]]]
    assert [s[:2] for s in worker["states"][2:]] == [["running", "stopping"], ["stopping", "stopped"],
                                                     ["stopped", "running"], ["running", "finished"]]
    assert worker["states"][3][2] == 32 + stopped["batch"]  # stopped at the chief's batch
    assert_same_weights(finals, reference)


@pytest.mark.parametrize("how", ["worker-killed", "chief-killed", "worker-hung"])
def test_a_dead_worker_makes_the_other_fail_clearly_within_the_bound(tmp_path, how):
    bound = 3.0 + 7.0  # the coordination service's heartbeat timeout + slack for a busy machine
    with Job(tmp_path, epochs=50, slow=0.02, heartbeat_timeout=3.0) as job:
        job.started()
        job.at_batch(0, 3)
        dead = 0 if how == "chief-killed" else 1
        job.procs[dead].send_signal(signal.SIGSTOP if how == "worker-hung" else signal.SIGKILL)
        dead_at = time.time()
        survivor = 1 - dead
        if survivor == 0:
            failed = job.send("wait", timeout=bound + 30)
            assert failed["state"] == "failed", failed
            assert failed["error"].startswith("WorkerLostError"), failed
            job.send("close")
        final = job.final(survivor, timeout=bound + 30)
        assert final["time"] - dead_at < bound
        assert final["state"] == "failed"
        assert final["error_type"] == "WorkerLostError"
        assert "lost the other workers" in final["error"]
        assert job.exit_code(survivor) == 0, job.logs()


def test_a_failure_on_the_chief_fails_the_other_worker_at_once_with_its_message(tmp_path):
    with Job(tmp_path, epochs=50, slow=0.02, fail_at=[0, 5]) as job:
        job.started()
        failed = job.send("wait")
        assert failed["state"] == "failed" and failed["error"] == "ValueError: boom at batch 5"
        failed_at = failed["time"]
        job.send("close")
        final = job.final(1)
        assert final["time"] - failed_at < 5.0  # not the 10 s exchange timeout
        assert final["error_type"] == "WorkerLostError"
        assert "worker 0 failed: ValueError: boom at batch 5" in final["error"]
        assert job.exit_codes() == [0, 0], job.logs()


def test_a_learning_rate_set_on_the_chief_lands_on_both_workers_at_the_same_batch(tmp_path):
    # one set while running, one while paused (it lands on the first batch after resume)
    with Job(tmp_path, epochs=1, slow=0.02, timeout=3.0) as job:
        job.started()
        job.at_batch(0, 4)
        assert job.send("lr 0.01")["error"] is None
        job.at_batch(0, 12)
        assert job.send("pause")["ok"] is True
        held = job.send("status")
        job.send("lr 0.002")
        assert job.send("resume")["ok"] is True
        assert job.send("wait")["state"] == "finished"
        job.send("close")
        finals = [job.final(0), job.final(1)]
        assert job.exit_codes() == [0, 0], job.logs()
    chief, worker = finals
    assert chief["pairs"] == worker["pairs"] == every_pair(1, 32)
    assert chief["lrs"] == worker["lrs"]  # the same value at every batch on both workers
    rates = [round(lr, 6) for lr in chief["lrs"]]
    first, second = rates.index(0.01), rates.index(0.002)
    assert rates == [0.05] * first + [0.01] * (second - first) + [0.002] * (32 - second)
    assert 5 <= first <= 12 < second
    changes = [[c[0], c[1], c[3], c[5]] for c in chief["changes"]]
    assert changes == [[0, first, "learning_rate", 0.01], [0, second, "learning_rate", 0.002]]
    assert [c[:4] for c in worker["changes"]] == [c[:4] for c in chief["changes"]]
    assert held["state"] in ("pausing", "paused") and second >= held["trained"]
    assert chief["history"]["learning_rate"] == worker["history"]["learning_rate"]
    assert chief["weights"] == worker["weights"]
