"""Never a hang: a batch read that hangs (a stuck network read) holds neither
`run.stop()` nor a Ctrl-C, with thread or process workers.

A hung thread cannot be killed: it is abandoned with a warning naming the
index, and each test here releases it at its end (the Sequence waits on an
Event the test sets), so no thread outlives the test.  A hung process is
terminated.  The Ctrl-C tests send a real SIGINT to a Python process running
`run.wait()` or a blocking `fit_generator`, as Jupyter's Interrupt does.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import textwrap
import threading
import time

import keras
import pytest
from hang_data import AT, HangsAt, N
from helpers import make_model
from test_processes import (  # noqa: F401 - leaves_nothing_behind is an autouse fixture
    CHECKS,
    REPO,
    leaves_nothing_behind,
)

import nbtrain
from nbtrain.data import GeneratorEnqueuer, OrderedEnqueuer
from nbtrain.run.waiting import STOP_TIMEOUT


class Trained(keras.callbacks.Callback):
    """The (epoch, batch) pairs trained; `reached` is set at the end of batch `at - 1`."""

    def __init__(self, at: int = AT):
        super().__init__()
        self.at, self.pairs, self.epoch = at, [], 0
        self.reached = threading.Event()

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        self.pairs.append((self.epoch, batch))
        if batch == self.at - 1:
            self.reached.set()


@pytest.fixture
def release():
    """The Event a hung thread worker waits on; set at the end of the test, so the
    abandoned thread returns and ends before the thread check."""
    event = threading.Event()
    yield event
    event.set()


# -- run.stop() ----------------------------------------------------------------------------


@pytest.mark.parametrize("processes", [False, True], ids=["threads", "processes"])
def test_stop_completes_within_the_bound_while_a_read_hangs_and_resume_reads_it_again(
        processes, release):
    data = HangsAt(release=None if processes else release)
    trained = Trained()
    run = nbtrain.fit(make_model(), data, epochs=2, workers=2, use_multiprocessing=processes,
                      shuffle=False, callbacks=[trained], display=False)
    assert trained.reached.wait(60)
    assert processes or data.hung.wait(10)  # a thread is in the read that hangs
    began = time.monotonic()
    with pytest.warns(RuntimeWarning) as warned:
        assert run.stop() is True
        run.wait(timeout=STOP_TIMEOUT + 5)
    took = time.monotonic() - began
    assert run.state == "stopped" and (run.epoch, run.batch) == (0, AT)
    assert took < STOP_TIMEOUT, f"stop() took {took:.1f} s"
    said = " ".join(str(w.message) for w in warned)
    if processes:
        assert "terminated" in said and f"batch {AT}" in said, said
    else:
        assert f"HangsAt[{AT}] (thread nbtrain-sequence_" in said and "abandoned" in said, said
    data.hang = False  # the cause is fixed
    release.set()  # the abandoned thread returns: its batch is ignored
    assert run.resume() is True
    run.wait(timeout=120)
    assert run.state == "finished"
    assert trained.pairs == [(e, b) for e in range(2) for b in range(N)]  # each batch once


@pytest.mark.parametrize("processes", [False, True], ids=["threads", "processes"])
def test_close_completes_within_the_bound_while_a_read_hangs(processes, release):
    data = HangsAt(release=None if processes else release)
    trained = Trained()
    run = nbtrain.fit(make_model(), data, workers=1, use_multiprocessing=processes,
                      shuffle=False, callbacks=[trained], display=False)
    assert trained.reached.wait(60)
    assert processes or data.hung.wait(10)
    began = time.monotonic()
    with pytest.warns(RuntimeWarning, match="abandoned" if not processes else "terminated"):
        run.close(timeout=STOP_TIMEOUT + 5)
    assert time.monotonic() - began < STOP_TIMEOUT
    assert run.state == "stopped" and run.batch == AT
    with pytest.raises(RuntimeError, match="closed"):
        run.resume()


def test_an_abandoned_thread_s_batch_is_ignored_when_it_returns(release):
    data = HangsAt(at=0, release=release)
    transformed = []
    enqueuer = OrderedEnqueuer(data, transform=transformed.append)
    enqueuer.start(workers=1, max_queue_size=1)
    batches = enqueuer.get()
    waiting = threading.Thread(target=lambda: next(batches, None))  # waits for batch 0
    waiting.start()
    assert data.hung.wait(10)
    began = time.monotonic()
    with pytest.warns(RuntimeWarning, match=r"HangsAt\[0\] \(thread nbtrain-sequence_0\) was "
                                            r"still being read 0.2 s after the stop: abandoned"):
        enqueuer.stop(timeout=0.2)
    assert time.monotonic() - began < 2
    waiting.join(5)
    assert not waiting.is_alive() and not enqueuer.is_running()
    release.set()
    for thread in threading.enumerate():
        if thread.name.startswith("nbtrain-sequence"):
            thread.join(10)  # the abandoned thread ends once its read returns
    assert data.served == [0] and transformed == []  # read, then dropped untransformed


def test_a_generator_thread_stuck_in_next_is_abandoned_and_its_item_comes_first_next_time(
        release):
    inside = threading.Event()

    def stuck():
        yield 1
        inside.set()
        release.wait(120)  # a stuck read
        yield 2
        yield 3

    generator = stuck()
    enqueuer = GeneratorEnqueuer(generator)
    enqueuer.start(workers=1, max_queue_size=1)
    assert next(enqueuer.get()) == 1
    assert inside.wait(10)  # the worker is in the stuck next()
    began = time.monotonic()
    with pytest.warns(RuntimeWarning, match="next\\(\\) was still running"):
        enqueuer.stop(timeout=0.2)
    assert time.monotonic() - began < 2 and not enqueuer.is_running()
    again = GeneratorEnqueuer(generator)  # no "generator already executing": it waits its turn
    again.start(workers=2)
    release.set()
    assert list(again.get()) == [2, 3]  # nothing lost, nothing out of order
    again.stop()
    for thread in threading.enumerate():
        if thread.name.startswith("nbtrain-generator"):
            thread.join(10)


# -- the first Ctrl-C ------------------------------------------------------------------------

SCRIPT = CHECKS + """
import sys, threading, time
import numpy as np
import keras
import nbtrain

how, processes = sys.argv[1], sys.argv[2] == "processes"

class Hangs(nbtrain.Sequence):           # defined in __main__: sent to processes by value
    def __init__(self, release):
        self.release = release
    def __len__(self):
        return 12
    def __getitem__(self, i):
        if i == 5:
            sys.stdout.write("hung\\n")       # one write: no line mixed with another thread's
            sys.stdout.flush()                # (a worker process's output is relayed)
            if self.release is None:
                time.sleep(600)             # a process worker: terminated
            else:
                self.release.wait(600)      # a thread worker: abandoned, released below
        x = np.full((4, 3), i, "float32")
        return x, x[:, :1]

class Reached(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        if batch == 4:
            sys.stdout.write("reached\\n")
            sys.stdout.flush()
    on_test_batch_end = on_train_batch_end

release = None if processes else threading.Event()
model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
model.compile(optimizer="sgd", loss="mse")
kwargs = dict(epochs=1, workers=2, use_multiprocessing=processes, shuffle=False,
              callbacks=[Reached()])
if how == "wait":
    run = nbtrain.fit(model, Hangs(release), display=False, **kwargs)
    try:
        run.wait()
    except KeyboardInterrupt:
        print("interrupted", run.state, flush=True)
    run.wait(timeout=30)
    print("then", run.state, run.batch, flush=True)
else:
    try:
        if how == "fit_generator":
            nbtrain.fit_generator(model, Hangs(release), verbose=0, **kwargs)
        else:
            nbtrain.evaluate_generator(model, Hangs(release), workers=2, callbacks=[Reached()],
                                       use_multiprocessing=processes)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
if release is not None:
    release.set()
for thread in threading.enumerate():
    if thread is not threading.main_thread():
        thread.join(10)
print("left", [t.name for t in threading.enumerate() if t is not threading.main_thread()],
      leftovers(), flush=True)
"""


class Lines:
    """A child's stdout read line by line from its pipe, never past a deadline (no
    buffered reader: what `select` sees is all there is)."""

    def __init__(self, proc: subprocess.Popen):
        self.fd, self.buffer = proc.stdout.fileno(), b""

    def next(self, deadline: float) -> str:
        """The next line, or '' at the deadline or the end."""
        while b"\n" not in self.buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self.fd], [], [], remaining)[0]:
                return ""
            chunk = os.read(self.fd, 65536)
            if not chunk:
                return ""
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.decode().strip()

    def rest(self, deadline: float) -> list[str]:
        """Every line until the end (or the deadline)."""
        lines = []
        while line := self.next(deadline):
            lines.append(line)
        return lines


@pytest.mark.parametrize("processes", [False, True], ids=["threads", "processes"])
@pytest.mark.parametrize("how", ["wait", "fit_generator", "evaluate_generator"])
def test_the_first_ctrl_c_returns_within_about_a_second(how, processes, tmp_path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=REPO)
    with open(tmp_path / "stderr", "w+") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(SCRIPT), how,
             "processes" if processes else "threads"],
            stdout=subprocess.PIPE, stderr=stderr, env=env, bufsize=0)
        out = Lines(proc)
        try:
            seen, deadline = set(), time.monotonic() + 180
            while seen != {"reached", "hung"}:  # batch 4 trained, the read of batch 5 hangs
                line = out.next(deadline)
                assert line, f"the child did not reach batch 5 (saw {seen})"
                seen.add(line)
            began = time.monotonic()
            os.kill(proc.pid, signal.SIGINT)  # one Ctrl-C
            interrupted = out.next(began + 30)
            took = time.monotonic() - began
            lines = out.rest(time.monotonic() + 60)
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
            stderr.seek(0)
            err = stderr.read()
    assert interrupted.startswith("interrupted"), (interrupted, err)
    assert took < 2.0, f"the first Ctrl-C took {took:.2f} s to return"
    if how == "wait":
        assert interrupted.split()[1] in ("stopping", "stopped")
        assert lines[0] == f"then stopped {AT}", err  # stopped at the batch that hung
    assert lines[-1:] == ["left [] []"], err  # no thread, process or segment left
    assert proc.returncode == 0, err
    if processes:
        assert "terminated" in err and "batch 5" in err, err
    else:
        assert "Hangs[5] (thread nbtrain-sequence_" in err and "abandoned" in err, err
