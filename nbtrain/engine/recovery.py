"""What a failed pass of a `FitLoop` leaves behind, and how the next pass goes on.

A pass can fail while it reads data, runs a callback's hook, runs the
training step or validates.  `Recovery` (one per `FitLoop`) keeps the loop's
position consistent in each case and records a `LoopFailure`: what failed,
where (epoch, batch and, for a Sequence, its own index), whether the next
`run()` can go on, and one line saying so (the line a `Run` adds to the
exception as a note, and the dashboard shows first).

What can go on (`LoopFailure.resumable`):

- reading a training Sequence (or arrays), on any kind of worker: the batches
  taken for the step are given back, the Sequence's cursor has not moved past
  the failed index, the epoch's running metrics are kept; the next pass starts
  new workers (process workers get the Sequence pickled again), so a fix to the
  Sequence's state or class is read;
- a data worker process that died (`nbtrain.data.WorkerLost`), generator or Sequence;
- a callback's `on_epoch_begin`, `on_epoch_end` or batch hook: the hook is
  called again from the callback that raised (those before it are not called
  twice), then training goes on; for `on_train_batch_begin` the batch was not
  trained and the whole hook runs again with it;
- validation on a Sequence (or arrays), whatever failed in it (the data, a
  test hook, the test step, which changes no weight): the next pass runs the
  validation again from its first batch, then ends the epoch;
- starting the workers, or reading the Sequence's length.

What cannot: the training step (it may have changed the weights or the
optimizer), a generator that raised (Python closes a generator that raised),
validation on a generator, `on_train_begin`, and anything else.

The same module holds where the next pass starts after an interruption
(`interrupted`) or a `BackupAndRestore` restore (`restored_epoch`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

from nbtrain.data import WorkerLost, is_sequence
from nbtrain.engine.callbacks import to_python
from nbtrain.engine.controls import Interrupt

_ESCAPES = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def plain(text: str) -> str:
    """`text` without terminal escape codes (Keras bolds its messages with them)."""
    return _ESCAPES.sub("", text)


def error_summary(exc: BaseException, limit: int = 160) -> str:
    """`Type: message` on one line: the message's first non-empty line, escape
    codes removed, shortened to `limit` characters."""
    message = next((line.strip() for line in plain(str(exc)).splitlines()
                    if line.strip() and not line.startswith("Exception encountered")), "")
    if len(message) > limit:
        message = message[:limit - 3].rstrip() + "..."
    name = type(exc).__name__
    return f"{name}: {message}" if message else name


@dataclass(frozen=True)
class LoopFailure:
    """Where and how a pass of a `FitLoop` failed.

    Attributes:
        kind: `"data"`, `"callback"`, `"step"`, `"validation"` or `"training"`
            (anything else).
        exception: the exception.
        epoch: the epoch in progress (0-based).
        epochs: the final epoch.
        batch: the batch in progress (0-based, within the epoch), or None.
        steps: batches in the epoch, when known.
        source: what raised, in words: `MySequence[7]` (a Sequence's own index),
            `MyCallback.on_epoch_end`, or None.
        resumable: the next `run()` (`run.resume()`) goes on at the batch that failed.
    """

    kind: str
    exception: BaseException
    epoch: int
    epochs: int
    batch: int | None
    steps: int | None
    source: str | None
    resumable: bool

    def where(self) -> str:
        """`epoch 1/3, batch 18/20` (1-based, as the progress bar counts)."""
        text = f"epoch {self.epoch + 1}/{self.epochs}"
        if self.batch is not None:
            text += f", batch {self.batch + 1}/{self.steps if self.steps else '?'}"
        return text

    def line(self, blocking: bool = False) -> str:
        """The one line: what failed, where, and what the user can do next.

        Args:
            blocking: the loop ran in a blocking call (`fit_generator`), not a `Run`.
        """
        error, where = error_summary(self.exception), self.where()
        what = {
            "data": f"Reading the training data failed at {where}",
            "callback": f"A callback failed at {where}",
            "step": f"The training step failed at {where}",
            "validation": f"Validation failed at the end of epoch {self.epoch + 1}/{self.epochs}",
        }.get(self.kind, f"Training failed at {where}")
        end = "" if error.endswith((".", "!", "?")) else "."
        if self.source:
            what += f": {self.source} raised {error}{end}"
        else:
            what += f": {error}{end}"
        if blocking:
            return f"{what} Fix the cause and train again (initial_epoch={self.epoch} goes on " \
                   "from this epoch)."
        if self.resumable and self.kind == "validation":
            return f"{what} Fix the cause, then run.resume() validates the epoch again and goes on."
        if self.resumable and self.kind == "callback":
            return f"{what} Fix it, then run.resume() calls it again and goes on."
        if self.resumable:
            return f"{what} Fix the cause, then run.resume() goes on at this batch."
        if self.kind == "step":
            return f"{what} The step may have changed the model: fix the cause and start a new run."
        return f"{what} It cannot be resumed: fix the cause and start a new run."


def add_note(exc: BaseException, line: str) -> None:
    """Add `line` as a note of `exc` (once)."""
    if line not in getattr(exc, "__notes__", ()) and hasattr(exc, "add_note"):
        exc.add_note(line)


def _frames(exc: BaseException) -> list:
    frames, tb = [], exc.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    return frames


class Recovery:
    """A `FitLoop`'s failures: it keeps the position consistent and records them.

    Args:
        loop: the `FitLoop`.

    Attributes:
        failure: the last pass's `LoopFailure`, or None.
    """

    def __init__(self, loop: Any):
        from nbtrain.engine.distributed.replicas import is_multi_worker

        self.loop = loop
        self.failure: LoopFailure | None = None
        # In a multi-worker job a failure ends the job (the coordinator reports it to the
        # others at once): nothing to keep, and reading the metrics would be a collective.
        self.job = is_multi_worker(getattr(loop.model, "distribute_strategy", None))
        self._context: tuple | None = None  # (kind, source, resumable, batch offset or None)
        self._retry: tuple | None = None  # (hook, args, callbacks still to call, then)

    # -- the callback hooks the loop calls through here ---------------------------------

    def _call(self, hook: str, args: tuple, callbacks: list,
              then: Callable[[], None] | None) -> None:
        for i, callback in enumerate(callbacks):
            try:
                getattr(callback, hook)(*args)
            except Exception:
                self._retry = (hook, args, callbacks[i:], then)
                self._context = ("callback", f"{type(callback).__name__}.{hook}", not self.job,
                                 None)
                raise
        if then is not None:
            then()

    def begin_epoch(self, epoch: int) -> None:
        """`on_epoch_begin` of every callback, then the epoch is begun."""
        state = self.loop.state

        def begun() -> None:
            state.begun = True

        self._call("on_epoch_begin", (epoch, {}), list(self.loop.callbacks.callbacks), begun)

    def end_epoch(self, logs: dict, finished: bool) -> None:
        """`on_epoch_end` of every callback, then the loop moves to the next epoch
        (if `finished`: a callback's stop ends an epoch early)."""
        state = self.loop.state

        def ended() -> None:
            state.begun = False
            if finished:
                state.epoch += 1
                state.batch = 0

        self._call("on_epoch_end", (state.epoch, logs), list(self.loop.callbacks.callbacks),
                   ended)

    def validate(self, logs: dict) -> None:
        """Validate at the end of an epoch: `logs` gets the `val_` entries.  A
        validation that fails on a Sequence is run again whole by the next pass
        (then the epoch ends as usual)."""
        loop = self.loop
        again = self._retry is not None and self._retry[0] == "validate"
        self._retry = None
        try:
            val_logs = loop.validate(again=again)
        except Interrupt:  # a stop while a validation read hung: validate again on resume
            self._retry = ("validate", logs)
            raise
        except Exception as exc:
            resumable = (is_sequence(loop.val_source) and not self.job) or isinstance(
                exc, WorkerLost)
            stream, source = loop.val_stream, None
            if (stream is not None and stream.is_sequence and stream.cursor.order
                    and any(frame.f_locals.get("self") is stream for frame in _frames(exc))):
                source = f"{type(stream.data).__name__}[{stream.cursor.peek()}]"
            self._context = ("validation", source, resumable, None)
            if resumable:
                self._retry = ("validate", logs)
            raise
        logs.update({f"val_{k}": v for k, v in val_logs.items()})

    def retry(self) -> None:
        """At the start of a pass: run again the validation or call again the hook a
        failure interrupted (from the callback that raised)."""
        pending = self._retry
        if pending is None:
            return
        if pending[0] == "validate":  # the epoch was trained: validate it, then end it
            logs = pending[1]
            self.validate(logs)
            self.loop.segments.logs = logs
            self.end_epoch(logs, True)
            return
        self._retry = None
        self._call(*pending)

    # -- failures -----------------------------------------------------------------------

    def data_failed(self, exc: BaseException, batches: list) -> None:
        """Reading the training data failed: give back the batches taken for the
        step and keep the epoch's metrics, so the next pass starts at this batch."""
        loop = self.loop
        stream, state = loop.train_stream, loop.state
        stream.unread(batches)
        lost = isinstance(exc, WorkerLost)
        if lost or not self.job:
            state.metrics = loop.train_steps.snapshot() if state.batch else None
        name = type(stream.data).__name__
        source = name
        if stream.is_sequence and stream.cursor.order:
            source = f"{name}[{stream.cursor.peek()}]"
        self._context = ("data", source, lost or (stream.is_sequence and not self.job),
                         len(batches))

    def batch_failed(self, exc: BaseException, batches: list, logs: Any) -> None:
        """A batch hook or the step failed (told apart by the traceback: a hook's
        frame is the loop's callback list's)."""
        loop = self.loop
        state, callbacks = loop.state, loop.callbacks
        hook, failing = None, None
        for frame in _frames(exc):
            owner = frame.f_locals.get("self")
            if hook is None and owner is callbacks:
                hook = frame.f_code.co_name
            elif hook is not None and any(owner is cb for cb in callbacks.callbacks):
                failing = owner
                break
        if hook not in ("on_train_batch_begin", "on_train_batch_end"):
            self._context = ("step", None, False, 0)
            return
        name = f"{type(failing).__name__}.{hook}" if failing is not None else hook
        self._context = ("callback", name, not self.job,
                         0 if hook == "on_train_batch_begin" else -1)
        if self.job:
            return
        if hook == "on_train_batch_begin":  # not trained: the batch and its hook again
            loop.train_stream.unread(batches)
        else:  # trained: the hook again from the callback that raised
            listed = list(callbacks.callbacks)
            start = next((i for i, cb in enumerate(listed) if cb is failing), 0)
            self._retry = (hook, (state.batch - 1, to_python(logs)), listed[start:], None)
        state.metrics = loop.train_steps.snapshot() if state.batch else None

    def failed(self, exc: BaseException) -> LoopFailure:
        """The pass ends with `exc`: record the `LoopFailure` (`self.failure`)."""
        loop = self.loop
        context, self._context = self._context, None
        if context is None:
            context = self._classify(exc)
        kind, source, resumable, offset = context
        state = loop.state
        batch = None if offset is None else state.batch + offset
        self.failure = LoopFailure(kind, exc, state.epoch, loop.epochs, batch,
                                   loop.epoch_steps(), source, resumable)
        if resumable:
            loop.segments.interrupt()  # as at a stop: writers flushed, the training open
        return self.failure

    def _classify(self, exc: BaseException) -> tuple:
        loop = self.loop
        for frame in _frames(exc):
            owner, name = frame.f_locals.get("self"), frame.f_code.co_name
            if owner is loop and name == "validate":
                return ("validation", None, False, None)
            if owner is loop.train_stream:  # starting workers, a Sequence's length
                return ("data", type(loop.train_stream.data).__name__,
                        loop.train_stream.is_sequence, 0)
        return ("training", None, False, 0)

    # -- where the next pass starts -----------------------------------------------------

    def interrupted(self) -> None:
        """The gate interrupted the pass: keep the epoch's metric state for the next run."""
        loop = self.loop
        state = loop.state
        if state.batch and state.metrics is None:
            loop.sync_model()  # on JAX an interrupted validation holds the state outside
            state.metrics = loop.train_steps.snapshot()
        loop.segments.interrupt()

    def restored_epoch(self) -> None:
        """BackupAndRestore restored an interrupted training: go on at its epoch
        (Keras's own `fit` reads the same attribute after `on_train_begin`)."""
        model, state = self.loop.model, self.loop.state
        restored = getattr(model, "_initial_epoch", None)
        if restored is not None:
            model._initial_epoch = None
            if state.batch == 0 and not state.begun and restored > state.epoch:
                state.epoch = min(int(restored), self.loop.epochs)


def run_blocking(loop: Any) -> Any:
    """`loop.run()` for a blocking call (`fit_generator`): a failure raises with
    its one line as a note."""
    try:
        return loop.run()
    except Exception as exc:
        failure = loop.recovery.failure
        if failure is not None and failure.exception is exc:
            add_note(exc, failure.line(blocking=True))
        raise


__all__ = ["LoopFailure", "Recovery", "add_note", "error_summary", "plain", "run_blocking"]
