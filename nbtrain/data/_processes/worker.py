"""Entry points of nbtrain's worker processes.

This module is what a spawned worker imports: it needs only the standard
library, NumPy, cloudpickle and nbtrain.data, never TensorFlow (which a worker
imports only if the user's dataset really uses it: `keras.utils.Sequence` and
`PyDataset` are served without it, see `nbtrain.data._processes.lightkeras`).

Protocol (one pipe each way; the parent never sends anything large: batches
travel through shared memory, a Sequence's state through a shared-memory blob):

    parent -> worker                      worker -> parent
    ("state", key, blob name)             ("ready", pid)
    ("task", task id, index, slot)        ("loaded", key)
    ("free", slot)          (generators)  ("done", task id, slot, segment, header size)
    ("stop",)                             ("item", slot, segment, header size)
                                          ("error", task id, slot, packed exception)
                                          ("end",)                (generators)
"""

from __future__ import annotations

import collections
import os
import random
import signal
import sys
import threading
import traceback
from typing import Any

from nbtrain.data._processes import lightkeras, shm
from nbtrain.data._processes.pickling import make_iterator, pack_exception

_PARENT_GONE = (EOFError, BrokenPipeError, ConnectionResetError)
_WATCH = 0.1  # seconds between checks that the parent is alive


def _watch_parent(parent: int, prefix: str) -> None:
    """Runs on a thread: once the parent is gone (however it died, even
    together with its whole process group), remove every segment of the pool
    and exit, even while the main thread is stuck in the user's code."""
    stop = threading.Event()
    while os.getppid() == parent:
        stop.wait(_WATCH)
    shm.sweep(prefix)
    os._exit(0)


def _setup(parent: int, prefix: str, light_keras: bool) -> None:
    # Ctrl-C is for the consumer: it stops the enqueuer, which ends the workers.
    # (A worker has its own session, so a Ctrl-C sent to the parent's process
    # group does not reach it anyway.)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for stream in (sys.stdout, sys.stderr):  # relayed line by line by the parent
        if stream is not None and hasattr(stream, "reconfigure"):
            stream.reconfigure(line_buffering=True)
    threading.Thread(target=_watch_parent, args=(parent, prefix), daemon=True,
                     name="nbtrain-parent-watch").start()
    if light_keras:
        lightkeras.install()


def _exit(code: int) -> None:
    """End the worker at once: an interpreter that loaded TensorFlow takes
    seconds to tear down, and nothing in a worker needs the teardown."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001, S110 - exiting anyway
            pass
    os._exit(code)


def sequence_main(wid: int, prefix: str, tasks: Any, results: Any, parent: int,
                  light_keras: bool) -> None:
    """Serve `sequence[index]` for ("task", ...) messages until ("stop",)."""
    code = 0
    try:
        _setup(parent, prefix, light_keras)
        _serve_sequence(wid, prefix, tasks, results)
    except BaseException:  # noqa: BLE001 - a bug of nbtrain's: show it, then exit
        traceback.print_exc()
        code = 1
    _exit(code)


def _serve_sequence(wid: int, prefix: str, tasks: Any, results: Any) -> None:
    writer = shm.SlotWriter(f"{prefix}{wid}_")
    parent_gone = False
    sequence, state_error = None, None
    inbox: collections.deque = collections.deque()
    try:
        results.send(("ready", os.getpid()))
        while True:
            while tasks.poll():  # read ahead, so that a stop skips the queued tasks
                inbox.append(tasks.recv())
                if inbox[-1][0] == "stop":
                    return
            msg = inbox.popleft() if inbox else tasks.recv()
            kind = msg[0]
            if kind == "task":
                _, task_id, index, slot = msg
                if state_error is not None:
                    results.send(("error", task_id, slot, state_error))
                    continue
                try:
                    name, header_size = writer.write(slot, sequence[index])
                except BaseException as exc:  # noqa: BLE001 - delivered to the consumer
                    results.send(("error", task_id, slot, pack_exception(exc)))
                    continue
                results.send(("done", task_id, slot, name, header_size))
            elif kind == "state":
                try:
                    sequence, state_error = shm.read_blob(msg[2]), None
                except BaseException as exc:  # noqa: BLE001 - reported at the next task
                    sequence, state_error = None, pack_exception(exc)
                results.send(("loaded", msg[1]))
            elif kind == "stop":
                return
    except _PARENT_GONE:
        parent_gone = True
    finally:
        # After a stop the parent sweeps (and may still read the last batches);
        # if the parent is gone nobody will, so remove our segments ourselves.
        writer.close(unlink=parent_gone)
        if parent_gone:  # the state blobs too: nobody else will
            shm.sweep(prefix)


def _seed(seed: int) -> None:
    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)


def generator_main(wid: int, prefix: str, tasks: Any, results: Any, parent: int,
                   light_keras: bool, payload: bytes, slots: int, seed: int | None) -> None:
    """Run this worker's copy of the generator into `slots` shared-memory slots,
    each handed back by a ("free", slot) message, until ("stop",)."""
    code = 0
    try:
        _setup(parent, prefix, light_keras)
        _serve_generator(wid, prefix, tasks, results, payload, slots, seed)
    except BaseException:  # noqa: BLE001 - a bug of nbtrain's: show it, then exit
        traceback.print_exc()
        code = 1
    _exit(code)


def _serve_generator(wid: int, prefix: str, tasks: Any, results: Any, payload: bytes,
                     slots: int, seed: int | None) -> None:
    if seed is not None:
        _seed(seed + wid)
    writer = shm.SlotWriter(f"{prefix}{wid}_")
    parent_gone = False
    free = list(range(slots))
    try:
        results.send(("ready", os.getpid()))
        try:
            iterator, ended = make_iterator(payload), False
        except BaseException as exc:  # noqa: BLE001 - delivered to the consumer
            results.send(("error", None, None, pack_exception(exc)))
            iterator, ended = None, True
        while True:
            if free and not ended and not tasks.poll():
                slot = free.pop()
                try:
                    name, header_size = writer.write(slot, next(iterator))
                except StopIteration:
                    ended = True
                    free.append(slot)
                    results.send(("end",))
                    continue
                except BaseException as exc:  # noqa: BLE001 - delivered to the consumer
                    ended = True
                    free.append(slot)
                    results.send(("error", None, None, pack_exception(exc)))
                    continue
                results.send(("item", slot, name, header_size))
                continue
            msg = tasks.recv()
            if msg[0] == "free":
                free.append(msg[1])
            elif msg[0] == "stop":
                return
    except _PARENT_GONE:
        parent_gone = True
    finally:
        writer.close(unlink=parent_gone)
        if parent_gone:  # the state blobs too: nobody else will
            shm.sweep(prefix)
