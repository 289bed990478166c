"""`Run`: the fit_generator loop in a background thread, steered from any thread.

A `Run` owns one `FitLoop` (validated inputs, data streams, callbacks and the
position `(epoch, batch)`) and calls `FitLoop.run()` once per *pass*, each
pass on its own thread.  Controls only change the run's state under a lock;
the loop acts on it at its *gate*, which it calls before every training step:

```
created --start--> running --pause--> paused --resume--> running
running/paused --stop--> stopping --(pass ends)--> stopped
running/paused --(pass ends, all epochs done)--> finished
stopped --resume()--> running                  (same epochs, exact next batch)
stopped/finished --resume(epochs=N)--> running (train on to epoch N)
running/paused/stopping --(exception)--> failed
stopped/finished --(multi-worker job: the other workers are lost)--> failed
```

In a `MultiWorkerMirroredStrategy` job every worker builds the same Run; the
chief's controls reach every worker at the same batch and the others follow
(`nbtrain.multiworker.WorkerSync`).

The Run never imports the dashboard; `nbtrain.interactive.fit` builds a Run,
attaches a display and starts it.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import importlib
import operator
import threading
import time
import warnings
from typing import Any, Callable, Iterator

import keras

from nbtrain.data import (
    WorkerLost,
    adapt_training_data,
    adapt_validation_data,
    is_sequence,
    sequence_length,
)
from nbtrain.engine import FitLoop

STATES = ("created", "running", "paused", "stopping", "stopped", "finished", "failed")
ENDED = frozenset({"stopped", "finished", "failed"})  # no pass in progress, wait() returns

Listener = Callable[["Run", str, str], Any]

_POLL = 0.1  # seconds between checks while blocking in the caller's thread (keeps Ctrl-C live)

# Models with a pass in progress: id(model) -> Run.  A Run holds its model, so ids are unique.
_ACTIVE: dict[int, Run] = {}
_ACTIVE_LOCK = threading.Lock()


class RunHistory(keras.callbacks.History):
    """A `keras.callbacks.History` that lasts across every pass of a `Run`.

    It does not reset on `on_train_begin`, and an epoch logged again (an epoch
    interrupted by a stop, then completed after a resume) replaces its earlier
    entry, so `epoch` is contiguous with no duplicates and `history[key][i]`
    belongs to `epoch[i]`.  An epoch end whose logs hold no training metric
    (stopped before any batch of the pass) leaves the history as it was.

    Example:

    ```python
    run = nbtrain.fit(model, x, y, epochs=3, display=False)
    run.wait().history["loss"]       # three values, one per epoch
    ```
    """

    def __init__(self) -> None:
        super().__init__()
        self.epoch: list[int] = []
        self._entries: dict[int, dict] = {}

    def on_train_begin(self, logs: dict | None = None) -> None:
        """Keep what earlier passes recorded."""

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = dict(logs or {})
        if not any(not key.startswith("val_") for key in logs):
            return
        self._entries[int(epoch)] = logs
        self.epoch = sorted(self._entries)
        history: dict[str, list] = {}
        for number in self.epoch:
            for key, value in self._entries[number].items():
                history.setdefault(key, []).append(value)
        self.history = history
        if self.model is not None:
            self.model.history = self


class Run:
    """Training in a background thread, with pause / resume / stop and one History.

    The constructor checks every argument in the calling thread (the same clear
    `ValueError`/`TypeError` as `fit_generator`) and does not start: call
    `start()` (or use `nbtrain.fit`, which also shows a display).  Every control
    may be called from any thread, any number of times, in any order.

    States: `'created'` (not started), `'running'`, `'paused'`, `'stopping'`,
    `'stopped'`, `'finished'`, `'failed'`.

    For a model built under a `MultiWorkerMirroredStrategy` with several
    workers, every worker runs the same program and builds the same Run.  The
    chief's `pause()`, `stop()`, `resume()` take effect on every worker at the
    same batch (one batch after the call); the other workers' Runs follow
    (their state shows the chief's; their controls raise), and their `wait()`
    returns when the chief's `close()` (or exit) ends the job.  `paused()` is
    refused there, and only the chief runs the file-writing callbacks.

    Args:
        model: a compiled `keras.Model`.
        x: an `nbtrain.Sequence`, a `keras.utils.PyDataset`, a generator (with
            `steps_per_epoch`), arrays (with `y` and `batch_size`; a list or dict
            of arrays for several inputs) or a `tf.data.Dataset`.
        y: targets, only when `x` is arrays.
        batch_size: samples per batch, only for arrays (default 32).
        epochs: index of the final epoch (trains `initial_epoch` .. `epochs - 1`).
        steps_per_epoch: batches per epoch; None means the Sequence's length or
            the dataset's cardinality (required for a generator).
        validation_data: `(x, y)`, `(x, y, sample_weight)`, a Sequence, a
            PyDataset, a generator (with `validation_steps`) or a `tf.data.Dataset`.
        validation_steps: batches per validation.
        validation_freq: validate every N epochs, or at these 1-indexed epochs.
        callbacks: `keras.callbacks.Callback`s (they run on the training thread).
        class_weight: dict mapping class index to a loss weight.
        workers: 0 reads data on the training thread; N >= 1 uses N workers.
        use_multiprocessing: the workers are processes.
        max_queue_size: batches read ahead.
        shuffle: reshuffle array samples, or a Sequence's batch order, each epoch.
        initial_epoch: the epoch to start at.

    Raises:
        RuntimeError: the model is already training in another Run.

    Example:

    ```python
    run = nbtrain.Run(model, x_train, y_train, batch_size=64, epochs=10)
    run.start()
    run.pause(); run.resume()
    with run.paused():
        model.evaluate(x_test, y_test)
    run.stop(); run.wait()
    run.resume(epochs=20)            # go on from the exact next batch
    history = run.wait()
    ```
    """

    def __init__(self, model: Any, x: Any, y: Any = None, *, batch_size: int | None = None,
                 epochs: int = 1, steps_per_epoch: int | None = None, validation_data: Any = None,
                 validation_steps: int | None = None, validation_freq: Any = 1,
                 callbacks: Any = None, class_weight: dict | None = None, workers: int = 1,
                 use_multiprocessing: bool = False, max_queue_size: int = 10,
                 shuffle: bool = True, initial_epoch: int = 0):
        _check_free(model)
        strategy = _multi_worker_strategy(model)
        if strategy is not None:
            from nbtrain.multiworker import is_chief, worker_callbacks

            callbacks = worker_callbacks(callbacks, is_chief(strategy))
        data = adapt_training_data(x, y, batch_size=batch_size, steps_per_epoch=steps_per_epoch,
                                   shuffle=shuffle, use_multiprocessing=use_multiprocessing)
        validation_data, validation_steps = adapt_validation_data(validation_data,
                                                                  validation_steps)
        self._history = RunHistory()
        self._loop = FitLoop(
            model, data.source, steps_per_epoch=data.steps, epochs=epochs, verbose=0,
            callbacks=callbacks, validation_data=validation_data,
            validation_steps=validation_steps, validation_freq=validation_freq,
            class_weight=class_weight, max_queue_size=max_queue_size, workers=workers,
            use_multiprocessing=use_multiprocessing, shuffle=data.shuffle_batches,
            initial_epoch=initial_epoch, history=self._history, gate=self._gate,
        )
        self._model = model
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._state = "created"
        self._exception: BaseException | None = None
        self._traceback: Any = None
        self._thread: threading.Thread | None = None  # the current (or last) pass
        self._threads: list[threading.Thread] = []  # passes not yet joined
        self._passes = 0
        self._pass_active = False
        self._in_gate = False  # the loop is holding in the gate
        self._holds = 0  # open `paused()` blocks: the gate holds while > 0
        self._hold_threads: collections.Counter = collections.Counter()
        self._hold_snapshot: Any = None
        self._listeners: list[Listener] = []
        self._events: collections.deque = collections.deque()
        self._dispatching = False
        self._closed = False
        self._sync: Any = None  # the WorkerSync of a multi-worker job
        if strategy is not None:
            from nbtrain.multiworker import WorkerSync

            self._sync = WorkerSync(self, strategy)

    # -- what the dashboard reads -------------------------------------------------------

    @property
    def state(self) -> str:
        """One of `'created'`, `'running'`, `'paused'`, `'stopping'`, `'stopped'`,
        `'finished'`, `'failed'`."""
        return self._state

    @property
    def model(self) -> Any:
        """The model being trained."""
        return self._model

    @property
    def history(self) -> RunHistory:
        """The one History of the run, across every pause, stop and resume."""
        return self._history

    @property
    def exception(self) -> BaseException | None:
        """The exception that failed the run (with its `__traceback__`), or None."""
        return self._exception

    @property
    def epoch(self) -> int:
        """0-based index of the epoch in progress (or the next to start); equals
        `epochs` once every epoch is done."""
        return self._loop.state.epoch

    @property
    def batch(self) -> int:
        """Batches trained in the current epoch."""
        return self._loop.state.batch

    @property
    def epochs(self) -> int:
        """The final epoch: training ends when `epoch` reaches it."""
        return self._loop.epochs

    @property
    def steps(self) -> int | None:
        """Batches in the current epoch, when known."""
        steps = self._loop.callbacks.params.get("steps") or self._loop.steps_per_epoch
        if steps:
            return int(steps)
        source = self._loop.train_stream.data
        if is_sequence(source):
            try:
                return sequence_length(source)
            except Exception:  # noqa: BLE001 - a length the user's code fails to give
                return None
        return None

    @property
    def is_chief(self) -> bool:
        """False on the workers of a multi-worker job other than the chief: they
        follow the chief's controls and cannot be steered themselves."""
        return self._sync is None or self._sync.is_chief

    def allowed_actions(self) -> set[str]:
        """The controls that do something now, for enabling buttons.

        A subset of `{'pause', 'resume', 'stop', 'continue'}`, where `'continue'`
        means `resume(epochs=N)` (train further after a stop or the end).

        Example:

        ```python
        pause_button.disabled = "pause" not in run.allowed_actions()
        ```
        """
        if not self.is_chief or self._closed:
            return set()
        return {
            "running": {"pause", "stop"},
            "paused": {"resume", "stop"},
            "stopped": {"resume", "continue"},
            "finished": {"continue"},
            "failed": {"resume"} if isinstance(self._exception, WorkerLost) else set(),
        }.get(self._state, set())

    def __repr__(self) -> str:
        steps = self.steps
        return (f"<nbtrain.Run {self._state} epoch {min(self.epoch + 1, self.epochs)}/{self.epochs}"
                f" batch {self.batch}/{steps if steps else '?'}>")

    # -- listeners ----------------------------------------------------------------------

    def add_listener(self, fn: Listener) -> Callable[[], None]:
        """Call `fn(run, old_state, new_state)` on every change of state.

        Listeners are called in the order of the changes, outside the Run's
        lock, on the thread that made the change (or on a thread already
        delivering an earlier change): they may call the Run's controls.  An
        exception in a listener is caught and warned about; it never breaks
        the run.

        Args:
            fn: the listener.

        Returns:
            A function that removes the listener (safe to call twice).

        Example:

        ```python
        remove = run.add_listener(lambda run, old, new: print(old, "->", new))
        remove()
        ```
        """
        if not callable(fn):
            raise TypeError(f"A listener must be callable, got {type(fn).__name__}.")
        with self._lock:
            self._listeners.append(fn)

        def remove() -> None:
            with self._lock:
                if fn in self._listeners:
                    self._listeners.remove(fn)

        return remove

    @property
    def callbacks(self) -> list:
        """The Keras callbacks the loop calls (the user's, the History, any display)."""
        return list(self._loop.callbacks.callbacks)

    def add_callback(self, callback: keras.callbacks.Callback) -> None:
        """Add a Keras callback to the loop (before `start()`, or between passes).

        Args:
            callback: a `keras.callbacks.Callback`; it runs on the training thread.

        Raises:
            TypeError: not a Keras callback.
            RuntimeError: a pass is in progress.

        Example:

        ```python
        run = nbtrain.Run(model, sequence, epochs=3)
        run.add_callback(keras.callbacks.CSVLogger("log.csv"))
        run.start()
        ```
        """
        if not isinstance(callback, keras.callbacks.Callback):
            raise TypeError(
                f"add_callback needs a keras.callbacks.Callback, got {type(callback).__name__}."
            )
        with self._lock:
            if self._pass_active:
                raise RuntimeError(
                    "Callbacks can only be added before start() or while no pass is in "
                    f"progress (the run is {self._state})."
                )
            self._loop.callbacks.append(callback)

    def _set_state(self, new: str) -> None:
        """Change state (lock held); the change is delivered by `_dispatch`."""
        old = self._state
        if old == new:
            return
        self._state = new
        self._events.append((old, new))
        self._cond.notify_all()

    def _dispatch(self) -> None:
        """Deliver queued changes in order, outside the lock, one thread at a time."""
        with self._lock:
            if self._dispatching:
                return  # that thread (maybe this one, re-entered) delivers ours too
            self._dispatching = True
        try:
            while True:
                with self._lock:
                    if not self._events:
                        self._dispatching = False
                        return
                    old, new = self._events.popleft()
                    listeners = list(self._listeners)
                for fn in listeners:
                    try:
                        fn(self, old, new)
                    except Exception as exc:  # noqa: BLE001 - a listener never breaks the run
                        warnings.warn(
                            f"nbtrain.Run listener {fn!r} raised {type(exc).__name__}: {exc} "
                            f"(on {old!r} -> {new!r}); ignored.",
                            RuntimeWarning, stacklevel=2,
                        )
        except BaseException:
            with self._lock:
                self._dispatching = False
            raise

    # -- controls -----------------------------------------------------------------------

    def _require_started(self, what: str) -> None:
        if self._state == "created":
            raise RuntimeError(f"This run has not started: call run.start() before run.{what}().")

    def _require_chief(self, what: str) -> None:
        self._require_started(what)
        if not self.is_chief:
            raise RuntimeError(
                f"run.{what}() on {self._sync.control.task}: in a multi-worker job only "
                "the chief's Run is steered; its controls reach every worker at the same batch."
            )

    def _on_training_thread(self) -> bool:
        current = threading.current_thread()
        return any(thread is current for thread in self._threads) or current is self._thread

    def start(self) -> Run:
        """Start training in a background thread; returns at once.

        Returns:
            The run itself.

        Raises:
            RuntimeError: already started, or the model is training in another Run.

        Example:

        ```python
        run = nbtrain.Run(model, sequence, epochs=5).start()
        ```
        """
        with self._lock:
            if self._state != "created":
                raise RuntimeError(f"This run was already started (it is {self._state}).")
            thread = self._begin_pass()
        self._launch(thread)
        return self

    def pause(self) -> bool:
        """Hold training before its next batch; the data workers stay alive.

        Returns:
            True if the run was running and is now paused; False (no-op) otherwise.

        Example:

        ```python
        run.pause(); ...; run.resume()
        ```
        """
        with self._lock:
            self._require_chief("pause")
            if self._state != "running":
                return False
            self._set_state("paused")
        self._dispatch()
        return True

    def stop(self) -> bool:
        """Stop after the current batch; `on_epoch_end` and `on_train_end` run and the
        data workers stop.  Works while paused.  `resume()` continues later.

        Returns:
            True if a running or paused run is now stopping; False (no-op) otherwise.

        Example:

        ```python
        run.stop(); run.wait()
        ```
        """
        with self._lock:
            self._require_chief("stop")
            if self._state not in ("running", "paused"):
                return False
            self._set_state("stopping")
            if self._sync is None:  # in a multi-worker job every worker stops at the gate
                self._model.stop_training = True
        self._dispatch()
        return True

    def resume(self, epochs: int | None = None) -> bool:
        """Continue training.

        Paused: continues with the next batch.  Stopped: a new pass of the loop
        from the interrupted epoch and, for a Sequence or arrays, its exact next
        batch in the same order (a generator is read on where it was).
        `epochs=N` sets the final epoch to N, so `resume(epochs=N)` also trains
        a finished run further.  While stopping, resume is ignored.  A run that
        failed because a data worker process died (`nbtrain.data.WorkerLost`)
        resumes like a stopped one, at the exact batch, with fresh workers.

        Args:
            epochs: new final epoch (must be greater than the epoch in progress).

        Returns:
            True if training resumes (or the target changed); False for a no-op.

        Raises:
            RuntimeError: the run has not started, or failed (other than by a lost worker).
            ValueError: `epochs` is not after the epoch in progress.

        Example:

        ```python
        run.stop(); run.wait()
        run.resume(epochs=run.epochs + 5)
        ```
        """
        thread = None
        with self._lock:
            self._require_chief("resume")
            state = self._state
            lost = state == "failed" and isinstance(self._exception, WorkerLost)
            if lost:  # like a stop: the data layer starts fresh workers
                state = "stopped"
            if state == "failed":
                raise RuntimeError(
                    f"This run failed ({type(self._exception).__name__}: {self._exception}) and "
                    "cannot be resumed; see run.exception."
                )
            if state == "stopping":
                return False
            if self._closed:
                raise RuntimeError("This run was closed (run.close()) and cannot be resumed.")
            if state in ("stopped", "finished"):
                _check_free(self._model, self)
            if epochs is not None:
                self._set_epochs(epochs)
            if state == "running":
                return epochs is not None
            if state == "paused":
                self._set_state("running")
            elif self._loop.state.epoch >= self._loop.epochs:  # stopped or finished
                warnings.warn(
                    f"The run has trained all {self._loop.epochs} epochs; to train more, call "
                    f"run.resume(epochs=N) with N > {self._loop.epochs}.",
                    RuntimeWarning, stacklevel=2,
                )
                return False
            else:
                if lost:
                    self._exception = self._traceback = None
                thread = self._begin_pass()
        if thread is not None:
            self._launch(thread)
        else:
            self._dispatch()
        return True

    def _set_epochs(self, epochs: Any) -> None:
        try:
            if isinstance(epochs, bool):
                raise TypeError
            epochs = operator.index(epochs)
        except TypeError:
            raise ValueError(f"`epochs` must be an integer, got {epochs!r}.") from None
        if epochs <= self._loop.state.epoch:
            raise ValueError(
                f"`epochs={epochs}` must be greater than the epoch in progress "
                f"({self._loop.state.epoch}): epochs is the index of the final epoch."
            )
        if self._sync is not None:
            self._sync.request_epochs(epochs)
            if self._pass_active:
                return  # every worker applies it at the same gate
        self._loop.epochs = epochs
        self._loop.callbacks.params["epochs"] = epochs

    # -- passes -------------------------------------------------------------------------

    def _begin_pass(self) -> threading.Thread:
        """Claim the model and make the pass's thread (lock held; started by `_launch`)."""
        _claim(self._model, self)
        self._passes += 1
        self._pass_active = True
        self._in_gate = False
        thread = threading.Thread(target=self._run_pass, name=f"nbtrain-run-pass-{self._passes}",
                                  daemon=True)
        previous, self._thread = self._thread, thread
        self._threads = [t for t in self._threads if t.is_alive() or t is previous]
        self._threads.append(thread)
        self._set_state("running")
        return thread

    def _launch(self, thread: threading.Thread) -> None:
        """Join the previous pass's thread (it has ended), start the new one, notify."""
        current = threading.current_thread()
        for old in list(self._threads):
            if old is not thread and old is not current and old.ident is not None:
                old.join()
        with self._lock:
            self._threads = [t for t in self._threads if t is thread or t is current]
        try:
            thread.start()
        except BaseException as exc:  # e.g. no thread can start at interpreter exit
            with self._lock:
                self._threads.remove(thread)
            self._end_pass(exc)
            raise
        self._dispatch()

    def _run_pass(self) -> None:
        error: BaseException | None = None
        try:
            if self._sync is not None:
                self._sync.before_pass()
            self._loop.run()
        except BaseException as exc:  # noqa: BLE001 - kept and re-raised by wait()
            error = exc if self._sync is None else self._sync.translate(exc)
        self._end_pass(error)
        if self._sync is not None:
            self._sync.after_pass(error)

    def _end_pass(self, error: BaseException | None) -> None:
        """The pass is over: release the model, set the final state, notify."""
        with self._lock:
            self._pass_active = False
            self._in_gate = False
            _release(self._model, self)
            if error is not None:
                self._exception, self._traceback = error, error.__traceback__
                self._set_state("failed")
            elif self._loop.state.epoch >= self._loop.epochs:
                self._set_state("finished")
            else:
                self._set_state("stopped")
        self._dispatch()

    def _gate(self) -> None:
        """Called by the loop before each step: hold while paused; enforce a stop."""
        with self._cond:
            if self._state == "paused" or self._holds:
                self._in_gate = True
                self._cond.notify_all()
                while self._state == "paused" or self._holds:
                    self._cond.wait()
                self._in_gate = False
            if self._state == "stopping":
                # Also covers a stop made before this pass reset model.stop_training.
                self._model.stop_training = True

    # -- waiting ------------------------------------------------------------------------

    def wait(self, timeout: float | None = None) -> keras.callbacks.History:
        """Block until the run is stopped, finished or failed; return the History.

        A Ctrl-C (KeyboardInterrupt) while waiting stops the run cleanly (the
        history is kept, the data workers end, the thread is joined) and is then
        raised again.

        On a worker of a multi-worker job other than the chief it returns when
        the chief ends the job (`run.close()` on the chief, or the chief's
        program exiting): the chief may resume after a stop.

        Args:
            timeout: seconds to wait at most (None: no limit).

        Returns:
            `run.history`.

        Raises:
            Exception: the exception that failed training, with its traceback.
            TimeoutError: `timeout` passed first.
            RuntimeError: not started, or called from the training thread or
                inside `run.paused()` (it would never return).

        Example:

        ```python
        history = nbtrain.fit(model, x, y, epochs=5, display=False).wait()
        ```
        """
        self._require_started("wait")
        if self._on_training_thread():
            raise RuntimeError("run.wait() cannot be called from the training thread.")
        if self._hold_threads[threading.get_ident()]:
            raise RuntimeError("run.wait() inside `with run.paused():` would never return.")
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            with self._cond:
                while not self._waited_for():
                    remaining = _remaining(deadline)
                    if remaining == 0:
                        raise TimeoutError(f"The run is still {self._state} after {timeout} s.")
                    self._cond.wait(_POLL if remaining is None else min(_POLL, remaining))
                ended = [t for t in self._threads if t is not self._thread or not self._pass_active]
            for thread in ended:
                _join(thread, deadline, timeout)
        except KeyboardInterrupt:
            if self.is_chief:
                self._stop_and_join()
            raise
        if self._state == "failed" and self._exception is not None:
            raise self._exception.with_traceback(self._traceback)
        return self._history

    def _waited_for(self) -> bool:
        """What `wait()` waits for: no pass in progress, and on a worker of a
        multi-worker job other than the chief, the end of the job."""
        if self._state not in ENDED:
            return False
        return self._sync is None or self._sync.is_chief or self._sync.released

    def _stop_and_join(self) -> None:
        """Stop the run and wait until its pass has ended and its thread is joined."""
        with contextlib.suppress(RuntimeError):
            self.stop()
        with self._cond:
            while self._pass_active:
                self._cond.wait(_POLL)
            threads = list(self._threads)
        for thread in threads:
            if thread is not threading.current_thread() and thread.ident is not None:
                _join(thread, None, None)

    def close(self, timeout: float | None = None) -> None:
        """End the run for good: stop it if it is training and wait until its pass
        has ended.  A closed run cannot be resumed; closing twice is a no-op.

        In a multi-worker job, closing the chief's Run ends the job: every other
        worker's `run.wait()` returns (the chief's program exiting does the same).
        On another worker, `close()` waits until the chief closes.

        Args:
            timeout: seconds to wait at most (None: no limit).

        Raises:
            TimeoutError: the pass was still ending after `timeout` s.
            RuntimeError: called from the training thread.

        Example:

        ```python
        run.stop(); run.wait()
        run.close()
        ```
        """
        if self._on_training_thread():
            raise RuntimeError("run.close() cannot be called from the training thread.")
        deadline = None if timeout is None else time.monotonic() + timeout
        if not self.is_chief:
            self._sync.close(timeout)
            self._closed = True
            return
        with self._lock:
            if self._closed:
                return
            started = self._state != "created"
        if started:
            with contextlib.suppress(RuntimeError):
                self.stop()
            with self._cond:
                while self._pass_active:
                    remaining = _remaining(deadline)
                    if remaining == 0:
                        raise TimeoutError(f"The run is still {self._state} after {timeout} s.")
                    self._cond.wait(_POLL if remaining is None else min(_POLL, remaining))
                threads = list(self._threads)
            for thread in threads:
                if thread.ident is not None:
                    _join(thread, deadline, timeout)
        with self._lock:
            self._closed = True
        if self._sync is not None:
            self._sync.close(_remaining(deadline))

    @contextlib.contextmanager
    def paused(self) -> Iterator[Run]:
        """Hold training for the duration of a `with` block; resume after it if it was running.

        On entry it waits until the loop actually holds between two batches, and
        snapshots the model's metric state; on exit it restores it, so calling
        `model.evaluate` or `model.predict` inside the block is safe and does not
        disturb the epoch's running averages.  While a block is open the loop
        does not move, even if `resume()` or `stop()` are called meanwhile (they
        take effect when the block ends).

        Yields:
            The run.

        Raises:
            RuntimeError: called from the training thread.

        Example:

        ```python
        with run.paused():
            print(model.evaluate(x_test, y_test, verbose=0))
        ```
        """
        if self._on_training_thread():
            raise RuntimeError("run.paused() cannot be used on the training thread.")
        if self._sync is not None:
            raise RuntimeError(
                "run.paused() is not available in a multi-worker job: model.evaluate and "
                "model.predict run collectives every worker must join.  Use run.pause() / "
                "run.resume() (the other workers hold at the same batch)."
            )
        me = threading.get_ident()
        resume_after = False
        with self._cond:
            self._holds += 1
            self._hold_threads[me] += 1
            if self._state == "running":
                self._set_state("paused")
                resume_after = True
        try:
            self._dispatch()
            with self._cond:
                while self._pass_active and not self._in_gate:
                    self._cond.wait(_POLL)
                if self._holds == 1 and self._in_gate:
                    # At batch 0 the loop has just reset the metrics (and the model may
                    # not be built yet): on exit, reset them again.
                    batch = self._loop.state.batch
                    self._hold_snapshot = self._loop.train_steps.snapshot() if batch else "reset"
            yield self
        finally:
            with self._cond:
                if self._holds == 1 and self._hold_snapshot is not None:
                    snapshot, self._hold_snapshot = self._hold_snapshot, None
                    if isinstance(snapshot, str):
                        self._loop.train_steps.reset()
                    else:
                        self._loop.train_steps.restore(snapshot)
                self._holds -= 1
                self._hold_threads[me] -= 1
                if resume_after and self._state == "paused" and not self._holds:
                    self._set_state("running")
                self._cond.notify_all()
            self._dispatch()


# -- helpers ----------------------------------------------------------------------------


def _remaining(deadline: float | None) -> float | None:
    if deadline is None:
        return None
    return max(0.0, deadline - time.monotonic())


def _join(thread: threading.Thread, deadline: float | None, timeout: float | None) -> None:
    """Join in short slices (so Ctrl-C is seen), honouring `deadline`."""
    while thread.is_alive():
        remaining = _remaining(deadline)
        if remaining == 0:
            raise TimeoutError(f"The run's thread is still ending after {timeout} s.")
        thread.join(_POLL if remaining is None else min(_POLL, remaining))


def _multi_worker_strategy(model: Any) -> Any:
    """The model's MultiWorkerMirroredStrategy when several workers train it, else None."""
    from nbtrain.engine.distribute import is_multi_worker

    strategy = getattr(model, "distribute_strategy", None)
    return strategy if is_multi_worker(strategy) else None


def _check_free(model: Any, run: Run | None = None) -> None:
    """Raise if `model` is training in a Run other than `run`."""
    with _ACTIVE_LOCK:
        _raise_if_busy(model, run)


def _claim(model: Any, run: Run) -> None:
    with _ACTIVE_LOCK:
        _raise_if_busy(model, run)
        _ACTIVE[id(model)] = run


def _raise_if_busy(model: Any, run: Run | None) -> None:
    """(Under `_ACTIVE_LOCK`.)"""
    other = _ACTIVE.get(id(model))
    if other is not None and other is not run:
        raise RuntimeError(
            f"This model is already training in {other!r}: stop it first "
            "(run.stop(); run.wait()), or steer that run instead."
        )


def _release(model: Any, run: Run) -> None:
    with _ACTIVE_LOCK:
        if _ACTIVE.get(id(model)) is run:
            del _ACTIVE[id(model)]


def _stop_all_at_exit(timeout: float = 10.0) -> None:
    """At interpreter exit, stop every run still training so its workers (and their
    shared memory) are cleaned up by the loop's own exit path.

    Registered with `threading`'s exit hooks where they exist: those run before
    `concurrent.futures` refuses new work, so the loop can end cleanly.
    """
    with _ACTIVE_LOCK:
        runs = list(_ACTIVE.values())
    for run in runs:
        with contextlib.suppress(Exception):
            run.stop()
    deadline = time.monotonic() + timeout
    for run in runs:
        thread = run._thread
        if thread is not None and thread.ident is not None:
            thread.join(max(0.0, deadline - time.monotonic()))


# Exit hooks run last-registered first: importing concurrent.futures.thread before
# registering makes this hook run before thread pools stop taking work.
importlib.import_module("concurrent.futures.thread")
getattr(threading, "_register_atexit", atexit.register)(_stop_all_at_exit)


__all__ = ["ENDED", "STATES", "Run", "RunHistory"]
