"""Widget messages handled while a notebook cell is busy.

A Jupyter kernel runs one cell at a time on its main thread, and widget
("comm") messages, such as a button's click, are handled on that thread too,
between cells.  A cell blocked in `run.wait()`, or training on its own thread
(`nbtrain.fit_generator`, `model.fit(callbacks=[nbtrain.Dashboard()])`),
would leave every click waiting until it ends.  `pump()` handles them from
inside the busy cell, the technique of jupyter-ui-poll, built here for
ipykernel 7:

- ipykernel 7's shell-channel thread reads the shell socket and forwards each
  request of the main shell to an in-process ZMQ socket, which the main
  thread's event loop reads between cells.  While a cell is busy the requests
  wait there.  `pump()` (on the main thread only) reads them itself.
- A `comm_open` / `comm_msg` / `comm_close` is handled at once, as ipykernel
  7.4 handles comm messages while an async cell awaits: its handler is called
  with the message as the parent (so output and replies belong to it), then
  the cell's parent is restored, and no busy/idle status is sent.
- Every other request (another cell's `execute_request`, completions,
  `kernel_info_request`, ...) is handed back, in arrival order, to the very
  callback that reads that socket between cells.  Its tasks wait for the
  kernel's shell lock, which the busy cell holds, so they run after it, once
  each, in order, and before anything still unread.  A pump always reads the
  socket until it is empty, so no request is left behind without a new wake-up
  of the event loop.
- A comm message can also be read by the event loop itself just before a cell
  starts: between cells the loop reads requests one by one, and a request's
  task takes the shell lock only a few loop turns after it was read.  A click
  read in that window would wait behind the cell that is about to block.  So
  the loop's reader is wrapped (`_read`): a comm message read while another
  request is still open is held here instead, and handled by the busy cell's
  next pump, or by the loop as soon as it gets a turn, whichever comes first.

Nothing here imports ipykernel or zmq unless the process is an ipykernel with
that design (7.0 to 7.4 are known to work; tested with 7.4).  In plain
IPython, scripts, another thread, an older ipykernel or inside a pump already
running, `current()` is None and the callers keep their plain waits.
"""

from __future__ import annotations

import asyncio
import collections
import inspect
import logging
import sys
import threading
import time
from typing import Any

COMM_TYPES = frozenset({"comm_open", "comm_msg", "comm_close"})
SLICE = 0.02
"""Seconds a blocking wait pumps at a time before it checks its own condition again."""
POLL_INTERVAL = 0.02
"""`poll()` reads the socket at most this often (seconds): a batch hook may call it
every batch."""

_log = logging.getLogger(__name__)
_lock = threading.Lock()
_instance: KernelEvents | None = None
_checked_kernel: Any = None


class KernelEvents:
    """The widget-message pump of one ipykernel 7 kernel (use `current()`).

    Args:
        kernel: the running `ipykernel.kernelbase.Kernel`.
    """

    def __init__(self, kernel: Any):
        import zmq

        self._zmq = zmq
        self.kernel = kernel
        shell_thread = kernel.shell_channel_thread
        self.thread = shell_thread.parent_thread
        self._pair = shell_thread.manager.get_shell_channel_to_subshell_pair(None)
        self._socket = self._pair.to_socket
        self._reply_stream = shell_thread.manager.get_subshell_to_shell_channel_socket(None)
        self._pumping = False
        self._next_poll = 0.0
        self._open = 0  # requests read by the loop's reader and not yet done
        self._held: collections.deque = collections.deque()  # comm frames read meanwhile
        self.handled = 0  # comm messages handled inside busy cells
        self.deferred = 0  # other requests handed back for after the cell
        stream = self._pair.to_stream
        self._original = stream._recv_callback
        if self._original is None:
            raise RuntimeError("the main shell has no reader")
        stream.on_recv(self._read, copy=False)

    @property
    def usable(self) -> bool:
        """True on the kernel's main thread, outside a pump already running."""
        return not self._pumping and threading.current_thread() is self.thread

    def pump(self, timeout: float = 0.0) -> int:
        """Handle the widget messages that arrive within `timeout` seconds.

        Returns as soon as some messages were read (or at the timeout), so the
        caller can look at what they changed.  Call on the kernel's main thread.

        Args:
            timeout: seconds to wait for a first message (0: only what is pending).

        Returns:
            The number of comm messages handled.
        """
        if not self.usable:
            if timeout > 0:
                time.sleep(timeout)
            return 0
        self._pumping = True
        try:
            if self._held:
                return self._handle_held()
            if timeout > 0:
                if not self._socket.poll(int(timeout * 1000), self._zmq.POLLIN):
                    return 0
            elif not self._socket.getsockopt(self._zmq.EVENTS) & self._zmq.POLLIN:
                return 0  # a cheaper look than poll(0), which builds a Poller
            handled = 0
            while True:
                try:
                    frames = self._socket.recv_multipart(self._zmq.NOBLOCK, copy=False)
                except self._zmq.Again:
                    return handled
                handled += self._one(frames)
        finally:
            self._pumping = False

    def poll(self) -> None:
        """`pump(0)`, at most every `POLL_INTERVAL` seconds: cheap enough for a batch hook."""
        now = time.monotonic()
        if now >= self._next_poll:
            self._next_poll = now + POLL_INTERVAL
            self.pump(0.0)

    def _msg_type(self, frames: list) -> str | None:
        session = self.kernel.session
        try:
            _, body = session.feed_identities(frames, copy=False)
            # Only a peek: the signature is recorded (replay check) when content is read.
            return session.deserialize(body, content=False, copy=False)["header"]["msg_type"]
        except Exception:  # noqa: BLE001 - the kernel's own reader reports a bad message
            return None

    def _one(self, frames: list) -> int:
        if self._msg_type(frames) not in COMM_TYPES:
            self._defer(frames)
            return 0
        self._handle_comm(frames)
        return 1

    def _read(self, frames: list) -> Any:
        """The event loop's reader of main-shell requests (wraps ipykernel's)."""
        if self._open and self._msg_type(frames) in COMM_TYPES:
            self._held.append(frames)
            asyncio.get_running_loop().call_soon(self._handle_held)
            return None
        self._open += 1
        return self._run(frames)

    async def _run(self, frames: list) -> Any:
        try:
            return await self._original(frames)
        finally:
            self._open -= 1

    def _handle_held(self) -> int:
        handled = 0
        while self._held:
            self._handle_comm(self._held.popleft())
            handled += 1
        return handled

    def _handle_comm(self, frames: list) -> None:
        kernel = self.kernel
        session = kernel.session
        idents, body = session.feed_identities(frames, copy=False)
        try:
            msg = session.deserialize(body, content=True, copy=False)
        except Exception:  # noqa: BLE001 - as ipykernel does: log and drop
            kernel.log.error("Invalid Message", exc_info=True)
            return
        handler = kernel.shell_handlers.get(msg["header"]["msg_type"])
        if handler is None:
            return
        parent = kernel.get_parent("shell")
        parent_ident = kernel._parent_ident["shell"]
        kernel.set_parent(idents, msg, channel="shell")
        try:
            result = handler(self._reply_stream, idents, msg)
            if inspect.isawaitable(result):  # not so in ipykernel 7: run it after the cell
                asyncio.ensure_future(result)
        except Exception:  # noqa: BLE001 - as ipykernel's dispatch: log, never break the cell
            kernel.log.error("Exception in message handler:", exc_info=True)
        finally:
            for stream in (sys.stdout, sys.stderr):
                if stream is not None:
                    stream.flush()
            kernel.set_parent(parent_ident, parent, channel="shell")
        self.handled += 1

    def _defer(self, frames: list) -> None:
        """Hand a request back to the reader that would have read it after the cell."""
        self.deferred += 1
        result = self._read(frames)
        if inspect.isawaitable(result):  # as ZMQStream runs an async on_recv callback
            future = asyncio.ensure_future(result)
            future.add_done_callback(_log_failure)


def _log_failure(future: asyncio.Future) -> None:
    if not future.cancelled() and future.exception() is not None:
        _log.error("a request handed back after a busy cell failed",
                   exc_info=future.exception())


def current() -> KernelEvents | None:
    """The kernel's widget-message pump, if the calling thread can drive it.

    None outside an ipykernel 7 kernel (plain IPython, scripts), on any thread
    but the kernel's main thread, and inside a pump already running.

    Example:

    ```python
    events = current()
    while not done():
        if events is not None:
            events.pump(0.02)
        else:
            time.sleep(0.02)
    ```
    """
    global _instance, _checked_kernel
    kernel = _kernel()
    if kernel is None:
        return None
    if threading.current_thread() is not kernel.shell_channel_thread.parent_thread:
        return None  # built on the main thread only: it wraps the loop's reader
    events = _instance
    if events is None or events.kernel is not kernel:
        with _lock:
            if _checked_kernel is not kernel:
                _checked_kernel = kernel
                try:
                    _instance = KernelEvents(kernel)
                except Exception:  # noqa: BLE001 - another kernel design: plain waits
                    _instance = None
            events = _instance
    if events is None or not events.usable:
        return None
    return events


def _kernel() -> Any:
    ipython = sys.modules.get("IPython")
    if ipython is None or "ipykernel" not in sys.modules:
        return None
    try:
        shell = ipython.get_ipython()
    except Exception:  # noqa: BLE001 - a half-imported IPython
        return None
    kernel = getattr(shell, "kernel", None)
    if getattr(kernel, "shell_channel_thread", None) is None:
        return None  # not ipykernel 7 (no shell-channel thread)
    return kernel


def wait(cond: threading.Condition, timeout: float | None) -> None:
    """`cond.wait(timeout)`, handling widget messages meanwhile on a busy kernel.

    The caller holds `cond` (acquired once), as for `Condition.wait`.  In a kernel
    on its main thread the lock is released while messages are pumped for at most
    `SLICE` s (a notify is then seen within that slice); elsewhere this is
    `cond.wait(timeout)`.  Like `Condition.wait`, it may return early: check
    the condition again.

    Args:
        cond: the condition whose lock the caller holds.
        timeout: seconds at most (None: one slice).
    """
    events = current()
    if events is None:
        cond.wait(timeout)
        return
    cond.release()
    try:
        events.pump(SLICE if timeout is None else min(SLICE, timeout))
    finally:
        cond.acquire()


def sleep(seconds: float) -> None:
    """`time.sleep(seconds)`, handling widget messages meanwhile on a busy kernel.

    Args:
        seconds: how long to wait.
    """
    events = current()
    if events is None:
        time.sleep(seconds)
        return
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        events.pump(left)


current()  # in a kernel, wrap the loop's reader now, before a click can race a cell
