"""Entry points of nbtrain's worker processes.

This module is what a spawned worker imports: it needs only the standard
library, NumPy, cloudpickle and nbtrain.data, never TensorFlow (which a worker
imports only if the user's dataset does).

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
from typing import Any

from nbtrain.data import shm
from nbtrain.data.pickling import make_iterator, pack_exception

_PARENT_GONE = (EOFError, BrokenPipeError, ConnectionResetError)


def _setup() -> None:
    # Ctrl-C (or Jupyter's interrupt, sent to the whole process group) is for
    # the consumer: it stops the enqueuer, which ends the workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def sequence_main(wid: int, prefix: str, tasks: Any, results: Any) -> None:
    """Serve `sequence[index]` for ("task", ...) messages until ("stop",)."""
    _setup()
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


def _seed(seed: int) -> None:
    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)


def generator_main(wid: int, prefix: str, tasks: Any, results: Any, payload: bytes,
                   slots: int, seed: int | None) -> None:
    """Run this worker's copy of the generator into `slots` shared-memory slots,
    each handed back by a ("free", slot) message, until ("stop",)."""
    _setup()
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
