"""`fit_generator`: the Keras 2 training loop on Keras 3.

`FitLoop` holds everything one training job needs across passes of the loop,
so that a run that stops can be resumed at the exact next batch (the `Run`
of `nbtrain.run` calls `FitLoop.run` once per pass); `fit_generator` is one
`FitLoop` run once.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras

from nbtrain.data import ArraySequence, WorkerLost, is_sequence
from nbtrain.engine import validation as checks
from nbtrain.engine.batches import (
    apply_class_weight,
    batch_size_of,
    check_class_weight,
    unpack_batch,
)
from nbtrain.engine.callbacks import LoopCallbacks
from nbtrain.engine.progress import make_progress
from nbtrain.engine.steps import make_steps
from nbtrain.engine.stream import DataExhausted, DataStream


@dataclass
class LoopState:
    """Where training stands.

    Attributes:
        epoch: the epoch in progress, or the next one to start.
        batch: batches of `epoch` already trained.
        metrics: the metric state at an interruption mid-epoch, so that the
            epoch's averages continue over the batches trained after a resume.
    """

    epoch: int = 0
    batch: int = 0
    metrics: Any = None


class FitLoop:
    """One training job: validated inputs, data streams, callbacks and position.

    The constructor checks every argument in the caller's thread and raises a
    clear `ValueError`/`TypeError` before any work starts. `run()` trains from
    the current position to epoch `epochs` (or until `model.stop_training`) and
    may be called again to continue.

    Args: those of `fit_generator`, plus
        history: the `keras.callbacks.History` to record into (kept across runs).
        gate: called before each step; may block (pause) - the loop checks
            `model.stop_training` when it returns.
        compiled_steps: force (True) or forbid (False) the compiled step path;
            None picks it where it applies.
        progress: extra progress callback to use instead of the text one.
    """

    def __init__(self, model: Any, generator: Any, steps_per_epoch: int | None = None,
                 epochs: int = 1, verbose: Any = 1, callbacks: Any = None,
                 validation_data: Any = None, validation_steps: int | None = None,
                 validation_freq: Any = 1, class_weight: dict | None = None,
                 max_queue_size: int = 10, workers: int = 1, use_multiprocessing: bool = False,
                 shuffle: bool = True, initial_epoch: int = 0, *,
                 history: keras.callbacks.History | None = None,
                 gate: Callable[[], None] | None = None,
                 compiled_steps: bool | None = None,
                 progress: keras.callbacks.Callback | None = None):
        checks.check_model(model)
        source = checks.as_source(generator)
        self.steps_per_epoch = checks.check_steps(source, steps_per_epoch, "steps_per_epoch",
                                                  "fit_generator")
        checks.check_epochs(epochs, initial_epoch)
        checks.check_workers(workers, max_queue_size)
        self.validation_freq = checks.check_validation_freq(validation_freq)
        self.val_source, self.validation_steps = checks.check_validation(
            validation_data, validation_steps
        )
        self.class_weight = check_class_weight(class_weight)
        self.model = model
        self.epochs = int(epochs)
        self.verbose = verbose
        self.gate = gate
        self.state = LoopState(epoch=int(initial_epoch))
        self.train_steps = make_steps(model, "train", compiled_steps)
        self.test_steps = make_steps(model, "test", compiled_steps)
        stream_args = dict(workers=int(workers), use_multiprocessing=use_multiprocessing,
                           max_queue_size=int(max_queue_size))
        self.train_stream = DataStream(source, shuffle=bool(shuffle), transform=self._train_batch,
                                       **stream_args)
        self._val_stream_args = stream_args
        self.val_stream: DataStream | None = None
        if progress is None:
            progress = make_progress(verbose)
        user = list(callbacks.callbacks if isinstance(callbacks, keras.callbacks.CallbackList)
                    else (callbacks or []))
        self.callbacks = LoopCallbacks(
            user + ([progress] if progress is not None else []),
            model=model, history=history, verbose=verbose, epochs=self.epochs,
            steps=self.steps_per_epoch,
        )
        self.history = self.callbacks._history
        self._first_batch_size: int | None = None

    # -- data ---------------------------------------------------------------------------

    def _train_batch(self, raw: Any) -> tuple:
        x, y, sample_weight = unpack_batch(raw)
        if self._first_batch_size is None:
            self._first_batch_size = batch_size_of(x)
        if self.class_weight:
            sample_weight = apply_class_weight(y, sample_weight, self.class_weight)
        return self.train_steps.prepare((x, y, sample_weight))

    def _validation_stream(self) -> DataStream:
        if self.val_stream is None:
            source = self.val_source
            if isinstance(source, ArraySequence) and self._first_batch_size:
                source.batch_size = self._first_batch_size
            self.val_stream = DataStream(source, shuffle=False,
                                         transform=test_batch_transform(self.test_steps),
                                         **self._val_stream_args)
        self.val_stream.start()  # no-op while running; restarts it after close()
        return self.val_stream

    # -- the loop -----------------------------------------------------------------------

    def run(self) -> keras.callbacks.History:
        """Train from the current position to epoch `self.epochs`; return the History."""
        model, state, callbacks = self.model, self.state, self.callbacks
        model.stop_training = False
        callbacks.params["epochs"] = self.epochs
        callbacks.on_train_begin()
        epoch_logs: dict = {}
        try:
            self.train_stream.start()
            while state.epoch < self.epochs:
                epoch_logs, finished = self._run_epoch()
                if finished:
                    state.epoch += 1
                    state.batch = 0
                if model.stop_training:
                    break
        finally:
            self.close()
        callbacks.on_train_end(epoch_logs)
        return self.history

    def _run_epoch(self) -> tuple[dict, bool]:
        model, state, callbacks, runner = self.model, self.state, self.callbacks, self.train_steps
        epoch = state.epoch
        steps = self.steps_per_epoch or self.train_stream.steps_this_epoch()
        callbacks.params["steps"] = steps
        if state.batch and state.metrics is not None:
            runner.restore(state.metrics)
        else:
            runner.reset()
        state.metrics = None
        callbacks.on_epoch_begin(epoch)
        per_call = runner.steps_per_execution
        logs = None
        while state.batch < steps:
            if self.gate is not None:
                self.gate()
                if model.stop_training:
                    break
            batches = []
            try:
                for _ in range(min(per_call, steps - state.batch)):
                    batches.append(self.train_stream.next())
            except DataExhausted:
                warnings.warn(
                    f"The generator ended after {state.batch + len(batches)} of {steps} "
                    f"steps in epoch {epoch + 1}; training stops here.",
                    stacklevel=3,
                )
                model.stop_training = True
                if not batches:
                    break
            except WorkerLost:
                # Resumable: the next run() continues at this batch with fresh workers
                # and the epoch's running metrics.
                self.train_stream.unread(batches)
                state.metrics = runner.snapshot() if state.batch else None
                raise
            callbacks.on_train_batch_begin(state.batch)
            logs = runner.run(batches)
            state.batch += len(batches)
            callbacks.on_train_batch_end(state.batch - 1, logs)
            if model.stop_training:
                break
        epoch_logs = runner.result(logs) if logs is not None else {}
        finished = state.batch >= steps
        if not finished:
            state.metrics = runner.snapshot()
        # As in Keras 2, only a complete epoch is validated: a stop mid-epoch ends
        # after the current batch, and the epoch is validated when a resume completes it.
        if (finished and self.val_source is not None
                and checks.should_validate(epoch, self.validation_freq)):
            val_logs = self._validate()
            epoch_logs.update({f"val_{k}": v for k, v in val_logs.items()})
        callbacks.on_epoch_end(epoch, epoch_logs)
        return epoch_logs, finished

    def _validate(self) -> dict:
        stream = self._validation_stream()
        steps = self.validation_steps or stream.steps_this_epoch()
        return evaluate_stream(self.test_steps, stream, steps, self.callbacks)

    def close(self) -> None:
        """Stop every enqueuer this loop started (the validation one too)."""
        try:
            self.train_stream.stop()
        finally:
            if self.val_stream is not None:
                self.val_stream.stop()  # kept: its cursor / unconsumed items serve the next run()


def test_batch_transform(runner: Any) -> Callable[[Any], tuple]:
    """What a stream feeding `evaluate_stream` applies to each raw batch."""

    def transform(raw: Any) -> tuple:
        return runner.prepare(unpack_batch(raw, "evaluation generator"))

    return transform


def evaluate_stream(runner: Any, stream: DataStream, steps: int, callbacks: Any) -> dict:
    """Run the test step over `steps` prepared batches of `stream` (built with
    `test_batch_transform`); return the averaged logs."""
    runner.reset()
    callbacks.on_test_begin()
    logs = None
    for step in range(steps):
        try:
            batch = stream.next()
        except DataExhausted:
            warnings.warn(
                f"The evaluation data ended after {step} of {steps} steps.", stacklevel=3
            )
            break
        callbacks.on_test_batch_begin(step)
        logs = runner.run([batch])
        callbacks.on_test_batch_end(step, logs)
    result = runner.result(logs) if logs is not None else {}
    callbacks.on_test_end(result)
    return result


def fit_generator(model: Any, generator: Any, steps_per_epoch: int | None = None,
                  epochs: int = 1, verbose: Any = 1, callbacks: Any = None,
                  validation_data: Any = None, validation_steps: int | None = None,
                  validation_freq: Any = 1, class_weight: dict | None = None,
                  max_queue_size: int = 10, workers: int = 1, use_multiprocessing: bool = False,
                  shuffle: bool = True, initial_epoch: int = 0) -> keras.callbacks.History:
    """Train `model` on batches from a generator or a Sequence (Keras 2's `fit_generator`).

    Args:
        model: a compiled `keras.Model`.
        generator: an `nbtrain.Sequence`, a `keras.utils.PyDataset`, or an
            iterator yielding `(x, y)` or `(x, y, sample_weight)` tuples.
        steps_per_epoch: batches per epoch; None means `len(sequence)`, read
            again after every epoch; required for a generator.
        epochs: index of the final epoch: trains epochs `initial_epoch` to `epochs - 1`.
        verbose: 0 silent, 1 a progress bar, 2 a line per epoch.
        callbacks: a list of `keras.callbacks.Callback`.
        validation_data: `(x, y)`, `(x, y, sample_weight)`, a Sequence or a generator.
        validation_steps: batches to draw from a validation generator (required
            for one); for a Sequence, defaults to its length.
        validation_freq: validate every N epochs (int) or at these 1-indexed epochs (list).
        class_weight: dict mapping class index to a weight for the loss.
        max_queue_size: batches read ahead by the workers.
        workers: 0 reads data on the training thread; N >= 1 uses N workers.
        use_multiprocessing: the workers are processes instead of threads.
        shuffle: shuffle a Sequence's batch order at every epoch.
        initial_epoch: epoch at which to start (to resume a previous run).

    Returns:
        A `keras.callbacks.History`.

    Example:

    ```python
    history = nbtrain.fit_generator(model, sequence, epochs=5, workers=2,
                                    validation_data=(x_val, y_val))
    ```
    """
    loop = FitLoop(model, generator, steps_per_epoch, epochs, verbose, callbacks,
                   validation_data, validation_steps, validation_freq, class_weight,
                   max_queue_size, workers, use_multiprocessing, shuffle, initial_epoch)
    return loop.run()


__all__ = ["FitLoop", "LoopState", "evaluate_stream", "fit_generator", "is_sequence"]
