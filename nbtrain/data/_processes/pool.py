"""Process workers for the enqueuers: persistent, spawned, fed through shared memory.

`ProcessSequencePool` serves `OrderedEnqueuer(use_multiprocessing=True)`;
`ProcessGeneratorBackend` serves `GeneratorEnqueuer(use_multiprocessing=True)`.

- Workers are started once per enqueuer `start()` and reused pass after pass.
  After `on_epoch_end`, `new_pass()` ships the Sequence's new state to every
  worker (pickled by value into a shared-memory blob) before any batch of the
  next pass is asked for.
- Batches come back through per-worker shared-memory slots (`shm`): array
  bytes are copied, never pickled.
- Workers are spawned without re-running `__main__` (`spawn`); datasets and
  generators travel by value with cloudpickle, so classes defined in a
  notebook work.
- A worker's exception is re-raised in the consumer as its original type, the
  worker's traceback as its `__cause__`; a worker that dies is reported as a
  RuntimeError naming it (see `group`).
- `check_sendable` / `check_fresh_generator` refuse, before any worker starts,
  what cannot be sent; `unsendable` holds the advice of that refusal.

The data flow is drawn in this package's `__init__`.
"""

from __future__ import annotations

import collections
import itertools
import queue
import threading
import warnings
import weakref
from collections.abc import Callable, Iterator
from typing import Any

from nbtrain.data._processes import shm
from nbtrain.data._processes.group import Worker, WorkerGroup, WorkerLost
from nbtrain.data._processes.pickling import check_picklable, generator_payload, unpack_exception
from nbtrain.data._processes.worker import generator_main, sequence_main
from nbtrain.data.handoff import END, POLL, BatchFuture, BatchPool, Failure, is_item, iter_queue
from nbtrain.data.userwarning import user_stacklevel

__all__ = ["ProcessGeneratorBackend", "ProcessSequencePool", "WorkerLost", "check_fresh_generator",
           "check_sendable", "draw_shuffle_order", "unsendable"]

SLOTS_PER_WORKER = 2  # batches a worker may hold: one being read out, one being made
_POLL = POLL


class _Task:
    __slots__ = ("future", "index", "slot", "worker")

    def __init__(self, future: BatchFuture):
        self.future = future
        self.index = future.index
        self.worker: Worker | None = None
        self.slot: int | None = None


_KERAS_ITERATORS = {("keras.src.legacy.preprocessing.image", "Iterator"),
                    ("keras_preprocessing.image.iterator", "Iterator")}


SEND_ADVICE = (
    "Make it picklable (no open files, started generators or other live resources in its "
    "attributes; open them lazily in `__getitem__`), or use use_multiprocessing=False to "
    "read it on threads."
)


def unsendable(what: str, error: BaseException) -> TypeError:
    """The error for a dataset that cannot be sent to worker processes, with the fix."""
    return TypeError(f"{what} cannot be sent to worker processes: {error}. {SEND_ADVICE}")


def check_sendable(sequence: Any, name: str) -> None:
    """With worker processes, a Sequence travels by value: refuse one that cannot,
    naming the attribute that cannot be pickled (locks and not-yet-started
    generators in it are rebuilt in each worker, as `shm.write_blob` sends them).

    Raises:
        TypeError: `sequence` (the argument `name`) cannot be pickled.
    """
    try:
        check_picklable(sequence)  # the pickler that sends it: what passes here is sent
    except Exception as exc:
        raise unsendable(f"`{name}` ({type(sequence).__name__})", exc) from exc


def check_fresh_generator(generator: Any, name: str) -> None:
    """With worker processes, a generator must be copyable: refuse it before any
    worker starts.

    Raises:
        TypeError: `generator` (the argument `name`) cannot be copied.
    """
    try:
        generator_payload(generator)
    except TypeError as exc:
        raise TypeError(f"`{name}` with use_multiprocessing=True: {exc}") from exc


def draw_shuffle_order(sequence: Any) -> None:
    """Draw, in this process, the shuffle order a Keras image iterator would draw
    lazily in its first `__getitem__` (`ImageDataGenerator.flow`,
    `flow_from_directory`, `flow_from_dataframe` without a `seed`).

    Each spawned worker starts with its own random state, so each would draw a
    different order and the first pass would repeat some samples and miss
    others; Keras 2's forked workers inherited one random state and drew the
    same one.  The iterator's own `on_epoch_end` draws it (what it does after
    every pass); with a `seed` the workers already agree.  Other Sequences are
    left as they are.

    Example:

    ```python
    draw_shuffle_order(datagen.flow(x, y, batch_size=32))   # index_array set here
    ```
    """
    keras_iterator = any((getattr(c, "__module__", ""), c.__name__) in _KERAS_ITERATORS
                         for c in type(sequence).__mro__)
    if (keras_iterator and getattr(sequence, "index_array", 0) is None
            and getattr(sequence, "seed", 0) is None):
        sequence.on_epoch_end()


class ProcessSequencePool(WorkerGroup, BatchPool):
    """Runs `sequence[index]` in `workers` spawned processes.

    Each worker holds at most `SLOTS_PER_WORKER` tasks; the others wait in the
    parent and go to whichever worker frees a slot first, so one slow batch
    does not hold up the rest.

    Args:
        sequence: the Sequence to read; pickled by value (`pickling.dumps`:
            cloudpickle, with locks and not-yet-started generators rebuilt).
        workers: number of worker processes.
        transform: applied in the parent to each batch as it arrives, on the
            thread that receives the batches (off the consumer's path).

    Raises:
        TypeError: the sequence cannot be pickled.
    """

    applies_transform = True

    def __init__(self, sequence: Any, workers: int,
                 transform: Callable[[Any], Any] | None = None):
        super().__init__()
        self.sequence = sequence
        self.transform = transform
        self._tasks: dict[int, _Task] = {}
        self._pending: collections.deque[int] = collections.deque()
        self._ids = itertools.count()
        self._ticks = itertools.count(1)
        self._free = {wid: list(range(SLOTS_PER_WORKER)) for wid in range(workers)}
        self._slots = dict.fromkeys(range(workers), SLOTS_PER_WORKER)
        self._states: dict[int, tuple[Any, set[int]]] = {}
        self._state_keys = itertools.count()
        self._futures = threading.Condition(threading.Lock())  # shared by this pool's futures
        draw_shuffle_order(sequence)  # one order for every worker, as a fork inherited
        key = self._write_state()  # before spawning: an unpicklable dataset fails fast
        self._start(sequence_main, workers)  # on failure, it shuts down (states too)
        with self._lock:
            for w in self.workers:
                self._states[key][1].add(w.wid)
                self._send(w, ("state", key, self._states[key][0].name))

    # -- consumer side ----------------------------------------------------------
    def submit(self, index: int) -> BatchFuture:
        """A future of `sequence[index]`, read by a worker process."""
        task = _Task(BatchFuture(self._futures, index))
        with self._lock:
            if self.error is not None:
                task.future.settle(error=self.error)
                return task.future
            if self._closing.is_set():
                task.future.cancel()
                return task.future
            task_id = next(self._ids)
            self._tasks[task_id] = task
            self._pending.append(task_id)
            self._dispatch()
        return task.future

    def new_pass(self) -> None:
        """Ship the sequence's current state (changed by `on_epoch_end`) to
        every worker; tasks submitted from now on see it."""
        with self._lock:
            if self._shut:
                return
            self._dispatch(all_pending=True)  # earlier tasks keep the earlier state
            key = self._write_state()
            for w in self.workers:
                self._states[key][1].add(w.wid)
                self._send(w, ("state", key, self._states[key][0].name))

    def _write_state(self) -> int:
        key = next(self._state_keys)
        what = f"the state of the dataset {type(self.sequence).__name__} (pickled by value)"
        try:
            segment = shm.write_blob(f"{self.prefix}s{key}", self.sequence, what)
        except OSError:  # no room in /dev/shm: says so itself
            raise
        except Exception as exc:  # noqa: BLE001 - reported with the fix
            raise unsendable(type(self.sequence).__name__, exc) from exc
        self._states[key] = (segment, set())
        return key

    def _dispatch(self, all_pending: bool = False) -> None:
        """Hand waiting tasks to workers with a free slot (under the lock);
        with `all_pending`, hand them all out, growing slots if needed."""
        ready = [w for w in self.workers if w.ready] or (self.workers if all_pending else [])
        while self._pending:
            # Only started workers get work: the first one to start serves the first
            # batches while the others are still starting.
            candidates = [w for w in ready if self._free[w.wid] or all_pending]
            if not candidates:
                return
            worker = max(candidates, key=lambda w: (len(self._free[w.wid]), -w.ticks))
            if not self._free[worker.wid]:
                self._free[worker.wid].append(self._slots[worker.wid])
                self._slots[worker.wid] += 1
            task_id = self._pending.popleft()
            task = self._tasks[task_id]
            task.worker, task.slot = worker, self._free[worker.wid].pop()
            worker.ticks = next(self._ticks)
            self._send(worker, ("task", task_id, task.index, task.slot))

    # -- collector side ---------------------------------------------------------
    def _handle(self, worker: Worker, msg: tuple) -> None:
        kind = msg[0]
        if kind == "loaded":
            self._loaded(worker, msg[1])
            return
        task_id, slot = msg[1], msg[2]
        with self._lock:
            task = self._tasks.pop(task_id, None)
        result, error = None, None
        if kind == "done":
            try:
                result = self.reader.read((worker.wid, slot), msg[3], msg[4])
            except BaseException as exc:  # noqa: BLE001 - e.g. a class the parent lacks
                error = exc
        else:
            index = task.index if task is not None else "?"
            error = unpack_exception(msg[3], f"nbtrain data {worker}, reading batch {index}")
        with self._lock:
            self._free[worker.wid].append(slot)
            self._dispatch()
        if error is None and self.transform is not None:
            try:
                result = self.transform(result)
            except BaseException as exc:  # noqa: BLE001 - delivered to the consumer
                error = exc
        if task is not None:
            task.future.settle(result, error)

    def _loaded(self, worker: Worker, key: int) -> None:
        with self._lock:
            segment, waiting = self._states.get(key, (None, set()))
            waiting.discard(worker.wid)
            if segment is None or waiting:
                return
            del self._states[key]
        segment.close()
        segment.unlink()

    def _became_ready(self, worker: Worker) -> None:
        with self._lock:
            self._dispatch()

    def _doing(self, worker: Worker) -> str:
        with self._lock:
            indices = sorted(t.index for t in self._tasks.values() if t.worker is worker)
        return f" while reading batch {', '.join(map(str, indices))}" if indices else ""

    def _failed(self, error: BaseException) -> None:
        with self._lock:
            tasks = list(self._tasks.values())
            self._tasks.clear()
            self._pending.clear()
        for task in tasks:
            task.future.settle(error=error)

    def _stopped(self) -> None:
        with self._lock:
            tasks = list(self._tasks.values())
            self._tasks.clear()
            self._pending.clear()
        for task in tasks:
            task.future.cancel()
        self._unlink_states()

    def _unlink_states(self) -> None:
        with self._lock:
            states = list(self._states.values())
            self._states.clear()
        for segment, _ in states:
            segment.close()
            try:
                segment.unlink()
            except FileNotFoundError:
                pass


_SENT: weakref.WeakSet = weakref.WeakSet()  # generators already copied into workers


def _warn_if_replayed(generator: Any) -> None:
    try:
        replayed = generator in _SENT
        _SENT.add(generator)
    except TypeError:  # an iterator that takes no weak reference
        return
    if replayed:
        warnings.warn(
            "This generator was already run in worker processes, whose copies are "
            "gone: new copies start from its initial state and replay its items.",
            UserWarning, stacklevel=user_stacklevel(),
        )


class ProcessGeneratorBackend(WorkerGroup):
    """Runs a copy of a generator in each of `workers` spawned processes.

    Each worker makes its own copy: a generator not started yet is rebuilt
    from its function and arguments; another iterator must be picklable.  Items
    from all workers are interleaved in the order they arrive.  `get()` ends
    when every copy has ended.

    Args:
        generator: a generator (not started yet) or a picklable iterator.
        workers: number of worker processes (more than one duplicates the data).
        max_queue_size: items kept ready ahead of the consumer.
        random_seed: when given, worker `i` seeds `random` and `numpy.random`
            with `random_seed + i` (otherwise each starts from fresh OS entropy).
        transform: applied in the parent to each item as it arrives, on the
            thread that receives the items (so `leftover` holds transformed items).

    Raises:
        TypeError: the generator has started, or the iterator cannot be pickled.
    """

    def __init__(self, generator: Iterator[Any], workers: int, max_queue_size: int,
                 random_seed: int | None = None,
                 transform: Callable[[Any], Any] | None = None):
        payload = generator_payload(generator)
        _warn_if_replayed(generator)
        if workers > 1:
            warnings.warn(
                "GeneratorEnqueuer with use_multiprocessing=True: each of the "
                f"{workers} worker processes runs its own copy of the generator, so "
                "your data may be duplicated. Use an nbtrain.Sequence to read each "
                "batch exactly once per epoch.",
                UserWarning, stacklevel=user_stacklevel(),
            )
        super().__init__()
        self.transform = transform
        self.leftover: list[Any] = []
        self._queue: queue.Queue = queue.Queue(max_queue_size)
        self._ended: set[int] = set()
        self._start(generator_main, workers, (payload, SLOTS_PER_WORKER, random_seed))

    def get(self) -> Iterator[Any]:
        """Yield items as workers produce them; end when every copy has ended;
        raise a worker's exception as it was raised."""
        yield from iter_queue(self._queue, self._closing.is_set, self._check)

    def _check(self) -> None:
        if self.error is not None:
            raise self.error
        if self.while_waiting is not None:
            self.while_waiting()

    def stop(self, timeout: float | None = None) -> None:
        """Stop the workers; keep produced but unconsumed items in `leftover`."""
        self.shutdown(timeout)

    def _put(self, item: Any) -> None:
        while not self._closing.is_set():
            try:
                self._queue.put(item, timeout=_POLL)
                return
            except queue.Full:
                continue
        if is_item(item):
            self.leftover.append(item)

    def _handle(self, worker: Worker, msg: tuple) -> None:
        kind = msg[0]
        if kind == "item":
            try:
                item = self.reader.read((worker.wid, msg[1]), msg[2], msg[3])
            except BaseException as exc:  # noqa: BLE001 - delivered to the consumer
                item = Failure(exc)
            self._send(worker, ("free", msg[1]))
            if self.transform is not None and not isinstance(item, Failure):
                try:
                    item = self.transform(item)
                except BaseException as exc:  # noqa: BLE001 - delivered to the consumer
                    item = Failure(exc)
            self._put(item)
            return
        if kind == "error":
            self._put(Failure(unpack_exception(msg[3], f"nbtrain data {worker}, in the generator")))
        self._ended.add(worker.wid)
        if len(self._ended) == len(self.workers):
            self._put(END)

    def _drained(self, worker: Worker, msg: tuple) -> None:
        if msg[0] != "item":
            return
        try:
            item = self.reader.read((worker.wid, msg[1]), msg[2], msg[3])
            self.leftover.append(item if self.transform is None else self.transform(item))
        except Exception:  # noqa: BLE001 - a batch nobody asked for yet: drop it
            pass

    def _stopped(self) -> None:
        queued = []
        while True:
            try:
                queued.append(self._queue.get_nowait())
            except queue.Empty:
                break
        items = [i for i in queued if is_item(i)]
        self.leftover[:0] = items  # queued items came first
