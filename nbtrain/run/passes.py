"""`PassRunner`: the threads that run a Run's `FitLoop`, one pass at a time.

A *pass* is one call of `FitLoop.run()` on its own thread
(`nbtrain-run-pass-N`).  `begin` (lock held) claims the model and makes the
thread, `launch` joins the previous pass's thread and starts the new one; when
the loop returns, the pass ends in `finished`, `stopped` or `failed`.  The
coordinator (`nbtrain.run.coordinator`) is told before and after each pass.
"""

from __future__ import annotations

import threading
from typing import Any

from nbtrain.run import registry
from nbtrain.run.coordinator import LocalCoordinator
from nbtrain.run.state import FINISHED, RUNNING, STOPPED, check_transition
from nbtrain.run.waiting import Deadline, join, wait_until


class PassRunner:
    """Runs the passes of one Run.

    Args:
        status: the Run's `RunStatus`.
        loop: its `FitLoop`.
        owner: the Run (what the model registry records).
        coordinator: its `Coordinator`.

    Attributes:
        active: a pass is in progress.
        thread: the current (or last) pass's thread, or None.
        count: passes begun.
    """

    def __init__(self, status: Any, loop: Any, owner: Any, coordinator: Any):
        self.status = status
        self.loop = loop
        self.owner = owner
        self.coordinator = coordinator
        self.active = False
        self.thread: threading.Thread | None = None
        self.count = 0
        self._threads: list[threading.Thread] = []  # passes not yet joined

    def begin(self) -> threading.Thread:
        """Claim the model and make the pass's thread (lock held; `launch` starts it)."""
        check_transition(self.status.state, RUNNING)
        registry.claim(self.loop.model, self.owner, self)
        self.count += 1
        self.active = True
        thread = threading.Thread(target=self._run, name=f"nbtrain-run-pass-{self.count}",
                                  daemon=True)
        previous, self.thread = self.thread, thread
        self._threads = [t for t in self._threads if t.is_alive() or t is previous]
        self._threads.append(thread)
        self.status.change(RUNNING)
        return thread

    def launch(self, thread: threading.Thread) -> None:
        """Join the previous pass's thread (it has ended), start the new one, notify."""
        current = threading.current_thread()
        for old in list(self._threads):
            if old is not thread and old is not current and old.ident is not None:
                old.join()
        with self.status.lock:
            self._threads = [t for t in self._threads if t is thread or t is current]
        try:
            thread.start()
        except BaseException as exc:  # e.g. no thread can start at interpreter exit
            with self.status.lock:
                self._threads.remove(thread)
            self._end(exc)
            raise
        self.status.dispatch()

    def start(self) -> None:
        """`begin` and `launch` a pass (lock not held)."""
        with self.status.lock:
            thread = self.begin()
        self.launch(thread)

    def _run(self) -> None:
        coordinator = self.coordinator
        error: BaseException | None = None
        try:
            coordinator.before_pass()
            self.loop.run()
        except BaseException as exc:  # noqa: BLE001 - kept and re-raised by wait()
            error = coordinator.translate(exc)
        self._end(error)
        coordinator.after_pass(error, self.start)

    def _end(self, error: BaseException | None) -> None:
        """The pass is over: release the model, set the final state, notify."""
        status = self.status
        with status.lock:
            self.active = False
            registry.release(self.loop.model, self.owner)
            if error is not None:  # the loop's record (not in a job: a failure ends the job)
                local = isinstance(self.coordinator, LocalCoordinator)
                status.fail(error, self.loop.recovery.failure if local else None)
            elif self.loop.position().epoch >= self.loop.epochs:
                status.change(FINISHED)
            else:
                status.change(STOPPED)
        status.dispatch()

    # -- what callers of wait() and close() need ----------------------------------------

    def on_training_thread(self) -> bool:
        """True on a pass's thread (where waiting for the run would never return)."""
        current = threading.current_thread()
        return any(thread is current for thread in self._threads) or current is self.thread

    def threads(self) -> list[threading.Thread]:
        """Pass threads not yet joined (lock held)."""
        return list(self._threads)

    def ended_threads(self) -> list[threading.Thread]:
        """Pass threads whose pass has ended (lock held)."""
        return [t for t in self._threads if t is not self.thread or not self.active]

    def wait_idle(self, deadline: Deadline | None = None) -> None:
        """Block until no pass is in progress, then join every pass thread but this one.

        Raises:
            TimeoutError: `deadline` passed first.
        """
        status = self.status
        timeout = None if deadline is None else deadline.timeout
        with status.cond:
            wait_until(status.cond, lambda: not self.active, deadline,
                       lambda: f"The run is still {status.state} after {timeout} s.")
            threads = list(self._threads)
        current = threading.current_thread()
        for thread in threads:
            if thread is not current and thread.ident is not None:
                join(thread, deadline)


__all__ = ["PassRunner"]
