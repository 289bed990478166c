"""A group of persistent worker processes and the thread that listens to them.

`WorkerGroup` spawns the workers once (see `_spawn`), then a *collector*
thread waits on every worker's result pipe and on every worker's process
sentinel at once.  Results are copied out of shared memory on that thread, off
the consumer's path; a worker that dies (SIGKILL, segfault, OOM) makes its
sentinel ready at once, so the death is reported within moments, never as a
hang.  `shutdown` asks the workers to stop, joins them, terminates and then
kills those that do not stop in time, and removes every shared-memory segment
of the group, whatever state the workers were left in.

The workers' stdout and stderr are pipes the collector relays, line by line,
to the parent's `sys.stdout` / `sys.stderr` (in Jupyter: the cell), leaving
out TensorFlow's C++ start-up log lines (see `relay`).
"""

from __future__ import annotations

import atexit
import os
import signal
import threading
import time
import weakref
from multiprocessing.connection import wait
from typing import Any

from nbtrain.data._processes import shm
from nbtrain.data._processes.lightkeras import light_keras_enabled
from nbtrain.data._processes.relay import OutputRelay
from nbtrain.data._processes.spawn import SpawnProcess, pipe
from nbtrain.data.handoff import DEFAULT_GRACE, WorkerLost
from nbtrain.data.userwarning import warn_user

_KILL_GRACE = 2.0
_LIVE: weakref.WeakSet = weakref.WeakSet()

_HINTS = {
    "SIGKILL": " (out of memory, or killed from outside)",
    "SIGSEGV": " (a crash in native code)",
    "SIGBUS": " (shared memory exhausted? check the free space of /dev/shm)",
    "SIGABRT": " (aborted by native code)",
}


def describe_exit(code: int | None) -> str:
    """How a process ended, for error messages: 'was killed by SIGKILL (...)'."""
    if code is None:
        return "stopped responding"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"was killed by {name}{_HINTS.get(name, '')}"
    return f"exited with code {code}"


class Worker:
    """One worker process and its two pipe ends, as the parent sees them."""

    def __init__(self, wid: int, process: SpawnProcess, tasks: Any, results: Any):
        self.wid = wid
        self.process = process
        self.pid = process.pid
        self.tasks = tasks  # parent -> worker
        self.results = results  # worker -> parent
        self.started_at = time.perf_counter()
        self.startup: float | None = None  # seconds from start() to its first message
        self.alive = True
        self.ready = False
        self.reading = True
        self.ticks = 0  # when it was last given work (for fair dispatch)

    def __repr__(self) -> str:
        return f"worker {self.wid} (pid {self.pid})"


class WorkerGroup:
    """Base of the process pools: workers, collector thread, failure detection, shutdown.

    Subclasses call `_start(target, n, args)` and implement `_handle(worker, msg)`,
    `_failed(error)` and, optionally, `_drained()` and `_stopped()`.
    """

    def __init__(self):
        shm.sweep_orphans()  # what pools of killed processes left behind
        self.prefix = shm.new_prefix()
        self.reader = shm.SlotReader()
        self.workers: list[Worker] = []
        self._lock = threading.RLock()
        self._closing = threading.Event()
        self._all_ready = threading.Event()
        self._wake_r, self._wake_w = pipe()
        self._thread: threading.Thread | None = None
        self._shut = False
        self._grace = DEFAULT_GRACE  # of the shutdown in progress
        self.error: BaseException | None = None
        self.while_waiting: Any = None  # called while the consumer waits (see the enqueuers)
        self._output = OutputRelay()  # the workers' stdout and stderr

    # -- life ---------------------------------------------------------------
    def _start(self, target: Any, n: int, args: tuple = ()) -> None:
        _LIVE.add(self)
        args = (os.getpid(), light_keras_enabled(), *args)
        try:
            stdio = self._output.open()
            try:
                for wid in range(n):
                    self.workers.append(self._spawn(target, wid, args, tuple(stdio)))
            finally:
                for w in stdio:
                    os.close(w)
        except BaseException:
            self.shutdown(0)
            raise
        self._thread = threading.Thread(
            target=self._collect, name=f"nbtrain-collector-{self.prefix}", daemon=True
        )
        self._thread.start()

    def _spawn(self, target: Any, wid: int, args: tuple, stdio: tuple) -> Worker:
        tasks_r, tasks_w = pipe()
        results_r, results_w = pipe()
        process = SpawnProcess(
            target=target, args=(wid, self.prefix, tasks_r, results_w, *args),
            name=f"nbtrain-data-{wid}", daemon=True,
        )
        process.stdio = stdio
        try:
            process.start()
        finally:
            tasks_r.close()
            results_w.close()
        return Worker(wid, process, tasks_w, results_r)

    @property
    def pids(self) -> list[int]:
        """Process ids of the workers."""
        return [w.pid for w in self.workers]

    @property
    def startup_times(self) -> list[float]:
        """Seconds each worker took from `start()` to being ready (started ones only)."""
        return [w.startup for w in self.workers if w.startup is not None]

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Wait until every worker has started; False on timeout."""
        return self._all_ready.wait(timeout)

    def is_running(self) -> bool:
        """True between start and shutdown, unless a worker failed."""
        return not self._closing.is_set() and self.error is None

    def _send(self, worker: Worker, msg: tuple) -> None:
        with self._lock:
            try:
                worker.tasks.send(msg)
            except OSError:  # it died: its sentinel tells the collector
                pass

    # -- the collector thread -------------------------------------------------
    def _collect(self) -> None:
        try:
            while not self._closing.is_set():
                waitables: dict[Any, Worker | None] = {self._wake_r: None}
                for w in self.workers:
                    if w.reading:
                        waitables[w.results] = w
                    if w.alive:
                        waitables[w.process.sentinel] = w
                for fd in self._output.fds():
                    waitables[fd] = None
                for obj in wait(list(waitables), timeout=1.0):
                    if self._closing.is_set():
                        return
                    worker = waitables[obj]
                    if worker is None:
                        if obj in self._output:
                            self._output.relay(obj)
                        continue
                    if obj is worker.results:
                        self._read(worker)
                    elif worker.alive:
                        self._exited(worker)
        except BaseException as exc:  # noqa: BLE001 - never leave the consumer waiting
            self._fail(RuntimeError(f"nbtrain's worker pool stopped working: {exc!r}"), exc)

    def _read(self, worker: Worker) -> None:
        """Handle every message `worker` has sent so far."""
        try:
            while worker.results.poll() and not self._closing.is_set():
                msg = worker.results.recv()
                if msg[0] == "ready":
                    worker.startup = time.perf_counter() - worker.started_at
                    worker.ready = True
                    if all(w.startup is not None for w in self.workers):
                        self._all_ready.set()
                    self._became_ready(worker)
                else:
                    self._handle(worker, msg)
        except (EOFError, OSError):
            worker.reading = False

    def _exited(self, worker: Worker) -> None:
        self._read(worker)  # what it sent before it died
        worker.alive = False
        worker.process.join(1.0)
        how = describe_exit(worker.process.exitcode)
        self._fail(WorkerLost(
            f"nbtrain data {worker} {how}{self._doing(worker)}. Its batches are read again "
            "by fresh workers when the enqueuer starts again (for a Run: run.resume() "
            "continues at this batch)."
        ))

    def _fail(self, error: BaseException, cause: BaseException | None = None) -> None:
        if self._closing.is_set():
            return
        if cause is not None:
            error.__cause__ = cause
        with self._lock:
            if self.error is None:
                self.error = error
        self._failed(self.error)

    # -- to override ----------------------------------------------------------
    def _handle(self, worker: Worker, msg: tuple) -> None:
        raise NotImplementedError

    def _doing(self, worker: Worker) -> str:
        """' while ...' for the death message."""
        return ""

    def _became_ready(self, worker: Worker) -> None:
        """A worker has started (work may go to it now)."""

    def _failed(self, error: BaseException) -> None:
        """A worker died (or the collector broke): tell the consumer."""

    def _drained(self, worker: Worker, msg: tuple) -> None:
        """A message read after the workers stopped (generators keep items)."""

    def _stopped(self) -> None:
        """Everything is down: release whoever still waits."""

    # -- shutdown ---------------------------------------------------------------
    def shutdown(self, timeout: float | None = None) -> None:
        """Stop every worker: ask, wait up to `timeout` (default 5 s), then
        terminate (with a `RuntimeWarning` naming the batches a worker still
        read: a read that hangs) and kill; remove all shared memory.  Safe to
        call twice."""
        with self._lock:
            if self._shut:
                return
            self._shut = True
        self._closing.set()
        grace = self._grace = DEFAULT_GRACE if timeout is None else max(0.0, timeout)
        try:
            self._wake_w.send_bytes(b"x")
            if self._thread is not None and self._thread is not threading.current_thread():
                self._thread.join(grace + _KILL_GRACE)  # it only waits on a transform
            for w in self.workers:
                self._send(w, ("stop",))
            deadline = time.monotonic() + grace
            for w in self.workers:
                w.process.join(max(0.0, deadline - time.monotonic()))
        finally:
            self._end_all()

    def _end_all(self) -> None:
        try:
            hung = [f"nbtrain data {w} did not stop within {self._grace:g} s{self._doing(w)}"
                    for w in self.workers if w.ready and w.process.is_alive()]
            if hung:
                warn_user(f"{'; '.join(hung)}: terminated (what it read is read again by "
                          "fresh workers at the next start).", RuntimeWarning)
            for w in self.workers:
                if w.process.is_alive():
                    w.process.terminate()
                    w.process.join(_KILL_GRACE)
                if w.process.is_alive():
                    w.process.kill()
                    w.process.join()
            for w in self.workers:
                self._drain_after_stop(w)
            self._output.relay_all()  # the workers are gone: what they wrote last
        finally:
            try:
                for w in self.workers:
                    w.tasks.close()
                    w.results.close()
                    w.process.close()
                self._wake_r.close()
                self._wake_w.close()
                self.reader.close()
                self._output.close()
            finally:
                try:
                    shm.sweep(self.prefix)
                    for name in self.reader.names:  # where /dev/shm cannot be listed
                        shm.unlink(name)
                finally:
                    _LIVE.discard(self)
                    self._stopped()

    def _drain_after_stop(self, worker: Worker) -> None:
        try:
            while worker.reading and worker.results.poll():
                self._drained(worker, worker.results.recv())
        except (EOFError, OSError):
            pass


@atexit.register
def _shutdown_all() -> None:
    """At exit, stop the pools nobody stopped (daemon workers would be
    terminated anyway, but their shared memory must go too)."""
    for group in list(_LIVE):
        group.shutdown(timeout=1.0)
