"""`PlotWorker`: the live plot rendered on its own thread.

NOTE the flow (one dashboard):

    training thread: Presenter.update (throttled) --copy of the tracker's panels--> submit
    plot controls (main thread): Presenter.replot ------------------------------> kick
    worker thread:   wait -> render the latest job (renderer under `render_lock`)
                          -> publish the PNG (under the presenter's lock) -> wait ...

The training thread never renders: it hands over a copy of what to draw (a
few arrays, microseconds) and goes on training; a render (5-60 ms) then runs
while TensorFlow's step releases the GIL.  Only the latest job is kept: a
worker behind skips to the newest data.  A kick (a plot control changed)
draws the last job again at once with the new options.  The thread starts at
the first job and ends by itself after `idle` seconds without one (a paused
run), or when `stop` is called (the run ended: the final plot is drawn on the
caller's thread for the snapshot); it never waits for the presenter's lock
without looking at its stop flag, so `stop` may be called with the lock held.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any


class PlotWorker:
    """Renders submitted plot jobs on a thread of its own, the latest first.

    Args:
        render: `render(job) -> tuple or None`: draws a job (called on the worker
            thread; it takes the renderer's lock itself).
        publish: `publish(job, *result)`: shows what `render` returned; called
            with `lock` held.
        lock: the presenter's lock.
        idle: seconds without a job after which the thread ends.
        name: the thread's name.

    Example:

    ```python
    worker = PlotWorker(render, publish, presenter.lock)
    worker.submit(job)      # from the training thread: returns at once
    worker.kick()           # draw the last job again (options changed)
    worker.stop()           # join the thread
    ```
    """

    def __init__(self, render: Callable[[Any], Any], publish: Callable[..., None],
                 lock: Any, idle: float = 3.0, name: str = "nbtrain-plot"):
        self.render = render
        self.publish = publish
        self.lock = lock
        self.idle = idle
        self.name = name
        self.jobs = 0  # jobs rendered
        self.skipped = 0  # jobs replaced by a newer one before they were drawn
        self._job: Any = None  # the job to draw next (None: nothing new)
        self._last: Any = None  # the last job drawn (a kick draws it again)
        self._cond = threading.Condition(threading.Lock())
        self._stop = False
        self._busy = False  # a job is being rendered or published
        self._thread: threading.Thread | None = None

    @property
    def alive(self) -> bool:
        """The thread runs."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    def submit(self, job: Any) -> None:
        """Draw `job` as soon as the worker is free (a job not drawn yet is replaced)."""
        with self._cond:
            if self._job is not None:
                self.skipped += 1
            self._job = job
            self._stop = False
            self._cond.notify_all()
            self._ensure_thread()

    def kick(self) -> bool:
        """Draw the last job again at once (the options changed); False if there is none."""
        with self._cond:
            if self._job is None:
                if self._last is None:
                    return False
                self._job = self._last
            self._stop = False
            self._cond.notify_all()
            self._ensure_thread()
            return True

    def stop(self, timeout: float | None = 10.0) -> None:
        """End the thread (a render in progress finishes, unpublished) and join it."""
        with self._cond:
            self._stop = True
            self._job = None
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until every job submitted so far is shown (or dropped); True if so."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._job is not None or self._busy:
                left = deadline - time.monotonic()
                if left <= 0 or not self.alive:
                    return self._job is None and not self._busy
                self._cond.wait(min(left, 0.05))
        return True

    def forget(self) -> None:
        """Drop the last job (its data is reset)."""
        with self._cond:
            self._last = None

    def _ensure_thread(self) -> None:
        thread = self._thread
        if thread is None or not thread.is_alive():
            self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
            self._thread.start()

    def _next(self) -> Any:
        """The next job, or None to end the thread."""
        with self._cond:
            deadline = time.monotonic() + self.idle
            while self._job is None and not self._stop:
                left = deadline - time.monotonic()
                if left <= 0:
                    self._thread = None  # ending: a submit from now on starts another
                    return None
                self._cond.wait(left)
            if self._stop:
                self._thread = None
                return None
            job, self._job = self._job, None
            self._last = job
            self._busy = True
            return job

    def _loop(self) -> None:
        while True:
            job = self._next()
            if job is None:
                return
            try:
                self._show(job)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _show(self, job: Any) -> None:
        result = self.render(job)
        if result is not None:
            while not self._stop:
                if self.lock.acquire(timeout=0.05):
                    try:
                        if not self._stop:
                            self.publish(job, *result)
                            self.jobs += 1
                    finally:
                        self.lock.release()
                    break


__all__ = ["PlotWorker"]
