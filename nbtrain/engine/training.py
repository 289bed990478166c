"""`fit_generator`: the Keras 2 training loop on Keras 3.

`FitLoop` holds everything one training job needs across passes of the loop,
so that a run that stops can be resumed at the exact next batch (the `Run`
of `nbtrain.run` calls `FitLoop.run` once per pass); `fit_generator` is one
`FitLoop` run once.

For its callbacks a `FitLoop` is one training across passes.  A pass that its
gate ends by raising `Interrupt` is an interruption: no `on_epoch_end` for the
epoch in progress, no `on_train_end`; the next `run()` goes on with the same
training (no second `on_train_begin` or `on_epoch_begin`).  The training ends
(`on_train_end`) when the last epoch is done, when a callback sets
`model.stop_training`, or with `end_training()`.  A `run()` after that is a
new training *segment*: the callbacks begin again as for a new `model.fit`,
except that nothing written is truncated (see `callbacks.begin_segment`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras

from nbtrain.data import ArraySequence, is_sequence, sequence_length
from nbtrain.data.userwarning import user_stacklevel
from nbtrain.engine.arguments import FIT_GENERATOR
from nbtrain.engine.autolog import autolog_callbacks
from nbtrain.engine.batches import (
    NamedFeed,
    apply_class_weight,
    batch_size_of,
    cast_float64,
    unpack_batch,
)
from nbtrain.engine.callbacks import LoopCallbacks
from nbtrain.engine.config import FitConfig, fit_config, should_validate
from nbtrain.engine.controls import HeldMetrics, Interrupt, LoopControls, Position
from nbtrain.engine.firstbatch import check_training
from nbtrain.engine.progress import make_progress
from nbtrain.engine.recovery import Recovery, run_blocking
from nbtrain.engine.segments import TrainingSegments
from nbtrain.engine.steps import make_steps
from nbtrain.engine.stream import INTERRUPT_GRACE, STOP_GRACE, DataExhausted, DataStream


@dataclass
class LoopState:
    """Where training stands.

    Attributes:
        epoch: the epoch in progress, or the next one to start.
        batch: batches of `epoch` already trained.
        metrics: the metric state at an interruption mid-epoch, so that the
            epoch's averages continue over the batches trained after a resume.
        begun: `on_epoch_begin` of `epoch` has run and its `on_epoch_end` not yet.
    """

    epoch: int = 0
    batch: int = 0
    metrics: Any = None
    begun: bool = False


class FitLoop(LoopControls):
    """One training job: validated inputs, data streams, callbacks and position.

    The constructor checks every argument in the caller's thread (through
    `nbtrain.engine.config.fit_config`, unless given a `config` it made) and
    raises a clear `ValueError`/`TypeError` before any callback or worker starts. `run()` trains from
    the current position to epoch `epochs` (or until `model.stop_training`, or
    until the gate raises `Interrupt`) and may be called again to continue.

    Args:
        model, generator: as `fit_generator` takes them.
        history: the `keras.callbacks.History` to record into (kept across runs).
        gate: called before each step; may block (pause), or raise `Interrupt`
            to end the pass as an interruption (a user's stop); the loop checks
            `model.stop_training` (a callback's stop) when it returns.
        compiled_steps: force (True) or forbid (False) the compiled step path;
            None picks it where it applies.
        progress: extra progress callback to use instead of the text one (or a
            function making it, called once the first batch is checked).
        config: a `FitConfig` already made by `fit_config` (then the other
            arguments are not read); see `FitLoop.from_config`.
        **arguments: the others of `fit_generator` (`arguments.FIT_GENERATOR`),
            by name.
    """

    def __init__(self, model: Any, generator: Any, *,
                 history: keras.callbacks.History | None = None,
                 gate: Callable[[], None] | None = None,
                 compiled_steps: bool | None = None,
                 progress: keras.callbacks.Callback | Callable[[], Any] | None = None,
                 config: FitConfig | None = None, **arguments: Any):
        if config is None:
            config = fit_config(model, generator, api="fit_generator", **arguments)
        self.config = config
        model = config.model
        self.steps_per_epoch = config.steps_per_epoch
        self.validation_freq = config.validation_freq
        self.val_source, self.validation_steps = config.validation, config.validation_steps
        self.class_weight = config.class_weight
        self.model = model
        self.epochs = config.epochs
        self.verbose = config.verbose
        self.gate = gate
        self.state = LoopState(epoch=config.initial_epoch)
        self.train_steps = make_steps(model, "train", compiled_steps)
        self.test_steps = make_steps(model, "test", compiled_steps)
        self._floatx = keras.config.floatx()
        self._feed = NamedFeed(model)  # dict keys naming no input or output: dropped (Keras 2)
        stream_args = dict(workers=config.workers, use_multiprocessing=config.use_multiprocessing,
                           max_queue_size=config.max_queue_size)
        self.train_stream = DataStream(config.data, shuffle=config.shuffle,
                                       transform=self._train_batch, **stream_args)
        self._val_stream_args = stream_args
        self.val_stream: DataStream | None = None
        self.recovery = Recovery(self)  # a failed pass: what it left, how the next goes on
        self._first_batch_size: int | None = None
        check_training(self)  # the first batch against the model, kept for the loop
        if progress is None:
            progress = make_progress(config.verbose)
        elif not isinstance(progress, keras.callbacks.Callback):
            progress = progress()  # made once the input is checked: no widget for bad input
        steps = config.steps_per_epoch
        if steps is None and is_sequence(config.data):
            steps = sequence_length(config.data)  # Keras 2: params['steps'] is len(sequence)
        self.callbacks = LoopCallbacks(
            list(config.callbacks) + autolog_callbacks(config)  # MLflow's autolog, if on
            + ([progress] if progress is not None else []),
            model=model, history=history, verbose=config.verbose, epochs=self.epochs,
            steps=steps,
        )
        if config.validation_arrays is not None:
            for callback in self.callbacks.callbacks:  # Keras 2's `callback.validation_data`
                callback.validation_data = config.validation_arrays
        self.history = self.callbacks._history
        self.segments = TrainingSegments(self.callbacks)
        self._announced = False  # the first epoch's steps went with the constructor's params

    @classmethod
    def from_config(cls, config: FitConfig, **kwargs: Any) -> FitLoop:
        """A FitLoop for a `FitConfig` made by `nbtrain.engine.config.fit_config`.

        Args:
            config: the checked, adapted arguments.
            **kwargs: `history`, `gate`, `compiled_steps`, `progress`.
        """
        return cls(config.model, config.data, config=config, **kwargs)

    def _announce_steps(self, steps: int) -> None:
        """Keras 2.3: with a Sequence's length as the steps, callbacks get `set_params`
        again before every epoch after the first (the length is read again); else
        only when the steps change."""
        again = self.steps_per_epoch is None and self._announced
        if again or self.callbacks.params.get("steps") != steps:
            self.callbacks.set_params({**self.callbacks.params, "steps": steps})
        self._announced = True

    # -- data ---------------------------------------------------------------------------

    def _train_batch(self, raw: Any) -> tuple:
        x, y, sample_weight = cast_float64(unpack_batch(raw), self._floatx)
        x, y = self._feed.inputs(x), self._feed.targets(y)
        if self._first_batch_size is None:
            self._first_batch_size = batch_size_of(x)
        if self.class_weight:
            sample_weight = apply_class_weight(y, sample_weight, self.class_weight)
        return self.train_steps.prepare((x, y, sample_weight))

    def validation_stream(self) -> DataStream:
        """The validation data's stream (made at the first validation, started for each)."""
        if self.val_stream is None:
            source = self.val_source
            if (isinstance(source, ArraySequence) and self._first_batch_size
                    and self.config.validation_batch_size is None):
                source.batch_size = self._first_batch_size
            self.val_stream = DataStream(source, shuffle=False,
                                         transform=test_batch_transform(self.test_steps,
                                                                        self._feed),
                                         **self._val_stream_args)
        self.val_stream.while_waiting = self.train_stream.while_waiting  # a stop ends a hung read
        self.val_stream.start()  # no-op while running; restarts it after close()
        return self.val_stream

    # -- the loop -----------------------------------------------------------------------

    @property
    def training(self) -> bool:
        """True from `on_train_begin` to `on_train_end`: after an interruption the
        training is still open, and the next `run()` goes on with it."""
        return self.segments.open

    def run(self) -> keras.callbacks.History:
        """Train from the current position to epoch `self.epochs`; return the History.

        Begins the training for the callbacks unless one is open (after an
        interruption); ends it unless the gate interrupts the pass.
        """
        model, state, callbacks = self.model, self.state, self.callbacks
        model.stop_training = False
        callbacks.params["epochs"] = self.epochs
        if self.segments.start():
            self.recovery.restored_epoch()
        grace = None  # how long the data workers get to end (DataStream.stop)
        try:
            self.train_stream.start()
            self.recovery.retry()  # a validation or callback hook a failure interrupted
            while state.epoch < self.epochs and not model.stop_training:
                self.segments.logs, finished = self._run_epoch()
                self.recovery.end_epoch(self.segments.logs, finished)  # on_epoch_end
        except Interrupt:
            grace = STOP_GRACE
            self.recovery.interrupted()
            return self.history
        except KeyboardInterrupt as exc:
            grace = INTERRUPT_GRACE  # back to the user within about a second
            self.segments.fail(exc)
            raise
        except Exception as exc:
            self.recovery.failed(exc)  # recorded: where, and whether run() can go on
            self.segments.fail(exc)
            raise
        finally:
            self.sync_model()
            self.close(grace)
        self.end_training()
        return self.history

    def sync_model(self) -> None:
        """Put the training state back into the model, for whoever looks at it now
        (on JAX it stays outside the model between steps); call it on the training
        thread between two steps: the end of a pass does it, and a gate that holds.
        The next step takes the model's state again, changes included, so a
        controller changing the model between two steps (a learning rate, weights)
        calls this first, then changes it."""
        self.train_steps.sync()
        self.test_steps.sync()

    def end_training(self, logs: dict | None = None) -> None:
        """End the training for the callbacks (`on_train_end`) if one is open.

        `run()` does it itself when the last epoch is done or a callback stops
        training; after an interruption, call it when the training will not go
        on (what `Run.close()` does).  A later `run()` begins a new segment.

        Args:
            logs: passed to `on_train_end` (default: the last epoch's logs).
        """
        self.segments.end(logs)

    def _run_epoch(self) -> tuple[dict, bool]:
        state, runner = self.state, self.train_steps
        epoch = state.epoch
        steps = self.steps_per_epoch or self.train_stream.steps_this_epoch()
        self._announce_steps(steps)
        if state.batch and state.metrics is not None:
            runner.restore(state.metrics)
        else:
            runner.reset()
        state.metrics = None
        if not state.begun:  # an epoch interrupted, then resumed, begins once
            self.recovery.begin_epoch(epoch)
        logs = self._train_batches(steps)
        epoch_logs = runner.result(logs) if logs is not None else {}
        finished = state.batch >= steps
        if not finished:
            state.metrics = runner.snapshot()
        # As in Keras 2, only a complete epoch is validated: a callback's stop mid-epoch
        # ends the epoch after the current batch, unvalidated.
        if (finished and self.val_source is not None
                and should_validate(epoch, self.validation_freq)):
            self.recovery.validate(epoch_logs)  # adds the val_ logs (again, once fixed)
        return epoch_logs, finished  # run() ends the epoch: Recovery.end_epoch

    def _train_batches(self, steps: int) -> Any:
        """Train the epoch's batches from `state.batch` to `steps` (or a stop);
        return the last step's logs (None if no step ran).

        The per-batch path: everything that can be done once per epoch is
        looked up here, batch hooks are called only if some callback defines
        them, and the batches come prepared (tensors, signature) from the
        stream's workers.
        """
        model, state, epoch = self.model, self.state, self.state.epoch
        next_batch, run = self.train_stream.next, self.train_steps.run
        begin, end = self.callbacks.batch_hooks("train")
        per_call = self.train_steps.steps_per_execution
        logs = None
        while state.batch < steps:
            gate = self.gate
            if gate is not None:
                gate()
                if model.stop_training:
                    break
            batches: list = []
            try:
                if per_call == 1:
                    batches.append(next_batch())
                else:
                    for _ in range(min(per_call, steps - state.batch)):
                        batches.append(next_batch())
            except DataExhausted:
                warnings.warn(
                    f"The generator ended after {state.batch + len(batches)} of {steps} "
                    f"steps in epoch {epoch + 1}; training stops here.",
                    stacklevel=user_stacklevel(),
                )
                model.stop_training = True
                if not batches:
                    break
            except Interrupt:  # a stop while a batch was awaited: none of them is lost
                self.train_stream.unread(batches)
                raise
            except Exception as exc:  # resumable at this batch (Recovery)
                self.recovery.data_failed(exc, batches)
                raise
            try:
                if begin is not None:
                    begin(state.batch)
                logs = run(batches)
                state.batch += len(batches)
                if end is not None:
                    end(state.batch - 1, logs)
            except Exception as exc:  # a hook (resumable) or the step (not)
                self.recovery.batch_failed(exc, batches, logs)
                raise
            if model.stop_training:
                break
        return logs

    def validate(self, again: bool = False) -> dict:
        """Run the validation data through the test step; return its logs.

        Args:
            again: a validation that failed, run again from its first batch
                (a Sequence's new pass; a generator is read on).
        """
        if again and is_sequence(self.val_source):
            self.val_stream = None  # its cursor stood at the batch that failed
        stream = self.validation_stream()
        steps = self.validation_steps or stream.steps_this_epoch()
        return evaluate_stream(self.test_steps, stream, steps, self.callbacks)

    def close(self, timeout: float | None = None) -> None:
        """Stop every enqueuer this loop started (the validation one too), giving a
        batch being read up to `timeout` s (None: 5 s; see `DataStream.stop`)."""
        try:
            self.train_stream.stop(timeout)
        finally:
            if self.val_stream is not None:
                self.val_stream.stop(timeout)  # kept: its cursor / unconsumed items serve the next run()


def test_batch_transform(runner: Any, feed: NamedFeed | None = None) -> Callable[[Any], tuple]:
    """What a stream feeding `evaluate_stream` applies to each raw batch; `feed`
    maps dict inputs and targets by name (default: `NamedFeed(runner.model)`)."""

    floatx = keras.config.floatx()
    if feed is None:
        feed = NamedFeed(runner.model, "evaluation generator")

    def transform(raw: Any) -> tuple:
        x, y, sample_weight = cast_float64(unpack_batch(raw, "evaluation generator"), floatx)
        return runner.prepare((feed.inputs(x), feed.targets(y), sample_weight))

    return transform


def evaluate_stream(runner: Any, stream: DataStream, steps: int, callbacks: Any) -> dict:
    """Run the test step over `steps` prepared batches of `stream` (built with
    `test_batch_transform`); return the averaged logs.

    Args:
        runner: the test `StepRunner`.
        stream: the batches.
        steps: how many to evaluate.
        callbacks: a `LoopCallbacks`, receiving the test hooks.
    """
    runner.reset()
    callbacks.on_test_begin()
    begin, end = callbacks.batch_hooks("test")
    next_batch, run = stream.next, runner.run
    logs = None
    for step in range(steps):
        try:
            batch = next_batch()
        except DataExhausted:
            warnings.warn(
                f"The evaluation data ended after {step} of {steps} steps.",
                stacklevel=user_stacklevel(),
            )
            break
        if begin is not None:
            begin(step)
        logs = run([batch])
        if end is not None:
            end(step, logs)
    result = runner.result(logs) if logs is not None else {}
    callbacks.on_test_end(result)
    return result


@FIT_GENERATOR.takes
def fit_generator(model: Any, generator: Any, **arguments: Any) -> keras.callbacks.History:
    """Train `model` on batches from a generator or a Sequence (Keras 2's `fit_generator`).

    Args:
        verbose: 0 silent, 1 a progress bar, 2 a line per epoch.
        shuffle: shuffle a Sequence's batch order at every epoch.

    Returns:
        A `keras.callbacks.History`.

    Example:

    ```python
    history = nbtrain.fit_generator(model, sequence, epochs=5, workers=2,
                                    validation_data=(x_val, y_val))
    ```
    """
    return run_blocking(FitLoop(model, generator, **arguments))  # a failure raises with its line


__all__ = ["FitLoop", "HeldMetrics", "Interrupt", "LoopState", "Position", "evaluate_stream",
           "fit_generator", "is_sequence"]
