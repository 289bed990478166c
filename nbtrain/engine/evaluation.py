"""`evaluate_generator` and `predict_generator` (Keras 2.3 signatures) on Keras 3."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from nbtrain.data import sequence_length
from nbtrain.data.userwarning import user_stacklevel
from nbtrain.engine import config as checks
from nbtrain.engine.adapters import get_data_adapter
from nbtrain.engine.arguments import INFERENCE
from nbtrain.engine.batches import NamedFeed, cast_float64, describe, unpack_inputs
from nbtrain.engine.callbacks import LoopCallbacks
from nbtrain.engine.distributed.replicas import distribute_batch, replicas
from nbtrain.engine.firstbatch import check_stream
from nbtrain.engine.progress import make_progress
from nbtrain.engine.steps import make_steps
from nbtrain.engine.stream import INTERRUPT_GRACE, DataExhausted, DataStream
from nbtrain.engine.training import evaluate_stream, test_batch_transform


def _stream(model: Any, generator: Any, arguments: dict, what: str,
            transform: Any = None) -> tuple[DataStream, int | None]:
    """The checked stream of `generator` and its steps (None: the Sequence's length)."""
    adapter = get_data_adapter(generator, "generator", what)
    adapter.check("generator")
    steps = checks.check_steps(adapter, arguments["steps"], "steps", what)
    workers = checks.check_int("workers", arguments["workers"], 0)
    max_queue_size = checks.check_int("max_queue_size", arguments["max_queue_size"], 1)
    use_multiprocessing = bool(arguments["use_multiprocessing"])
    checks.check_processes(adapter.source, "generator", use_multiprocessing, workers)
    stream = DataStream(adapter.source, workers=workers, use_multiprocessing=use_multiprocessing,
                        max_queue_size=max_queue_size, shuffle=False, transform=transform)
    # the first batch against the model, before any callback or worker (kept for the loop)
    check_stream(model, stream, what == "evaluate_generator", use_multiprocessing)
    return stream, steps


def _callbacks(model: Any, callbacks: Any, verbose: Any, steps: int) -> LoopCallbacks:
    """The user's callbacks, and Keras's progress bar for `verbose` (as
    `model.evaluate` and `model.predict` add it)."""
    progress = make_progress(verbose)
    return LoopCallbacks(list(checks.check_callbacks(callbacks))
                         + ([progress] if progress is not None else []),
                         model=model, verbose=checks.check_verbose(verbose), epochs=1,
                         steps=steps)


def _flatten(model: Any, logs: dict) -> Any:
    flatten = getattr(model, "_flatten_metrics_in_order", None)
    if flatten is not None:
        return flatten(logs)
    values = list(logs.values())
    return values[0] if len(values) == 1 else values


@INFERENCE.takes
def evaluate_generator(model: Any, generator: Any, *, compiled_steps: bool | None = None,
                       **arguments: Any) -> Any:
    """Evaluate `model` on batches from a generator or a Sequence.

    Returns the same numbers as `model.evaluate` on the same data, in the same
    order: the loss alone (a scalar) when the model has no metrics, else a list
    starting with the loss.

    Args:
        model: a compiled `keras.Model`.
        callbacks: `keras.callbacks.Callback`s receiving the test hooks.
        verbose: 0 silent, 1 the progress bar `model.evaluate(verbose=1)` shows,
            2 its final line only.
        compiled_steps: force (True) or forbid (False) the compiled step path;
            None picks it where it applies.

    Example:

    ```python
    loss, accuracy = nbtrain.evaluate_generator(model, val_sequence)
    ```
    """
    checks.check_model(model, "evaluate_generator")
    runner = make_steps(model, "test", compiled_steps)
    stream, steps = _stream(model, generator, arguments, "evaluate_generator",
                            test_batch_transform(runner))
    cbs = _callbacks(model, arguments["callbacks"], arguments["verbose"],
                     steps or sequence_length(stream.data))
    try:
        stream.start()
        logs = evaluate_stream(runner, stream, steps or stream.steps_this_epoch(), cbs)
    except KeyboardInterrupt:
        stream.stop(INTERRUPT_GRACE)  # back to the user within about a second
        raise
    finally:
        runner.sync()  # whatever ended the evaluation, the model holds its state
        stream.stop()
    return _flatten(model, logs)


def _concatenate(outputs: list) -> Any:
    first = outputs[0]
    if isinstance(first, dict):
        return {key: np.concatenate([o[key] for o in outputs]) for key in first}
    if isinstance(first, (list, tuple)):
        return [np.concatenate([o[i] for o in outputs]) for i in range(len(first))]
    return np.concatenate(outputs)


def predict_batch(model: Any, x: Any) -> Any:
    """`model.predict_on_batch(x)`, with `x` split across the replicas of a
    multi-replica strategy (`predict_on_batch` would predict every row once per replica)."""
    if replicas(model) > 1:
        import keras

        model.make_predict_function()
        outputs = model.predict_function([distribute_batch(model.distribute_strategy, (x,))])
        return keras.tree.map_structure(keras.ops.convert_to_numpy, outputs)
    return model.predict_on_batch(x)


@INFERENCE.takes
def predict_generator(model: Any, generator: Any, **arguments: Any) -> Any:
    """Predict on batches from a generator or a Sequence and concatenate the outputs.

    Batches may be `x`, `(x,)`, `(x, y)` or `(x, y, sample_weight)`; only `x` is used.

    Args:
        model: a `keras.Model` (it need not be compiled).
        generator: a Sequence, a PyDataset or an iterator of batches.
        callbacks: `keras.callbacks.Callback`s receiving the predict hooks.
        verbose: 0 silent, 1 the progress bar `model.predict(verbose=1)` shows,
            2 its final line only.

    Returns:
        One NumPy array for a single-output model; a list (or dict) of arrays,
        one per output, otherwise.

    Example:

    ```python
    predictions = nbtrain.predict_generator(model, test_sequence)
    ```
    """
    if not hasattr(model, "predict_on_batch"):
        raise TypeError(f"`model` must be a keras.Model; predict_generator got "
                        f"{describe(model)}.")
    import keras

    floatx = keras.config.floatx()
    stream, steps = _stream(model, generator, arguments, "predict_generator",
                            lambda batch: cast_float64(batch, floatx))
    cbs = _callbacks(model, arguments["callbacks"], arguments["verbose"],
                     steps or sequence_length(stream.data))
    outputs: list = []
    feed = NamedFeed(model)
    try:
        stream.start()
        total = steps or stream.steps_this_epoch()
        cbs.on_predict_begin()
        for step in range(total):
            try:
                x = feed.inputs(unpack_inputs(stream.next()))
            except DataExhausted:
                warnings.warn(f"The data ended after {step} of {total} steps.",
                              stacklevel=user_stacklevel())
                break
            cbs.on_predict_batch_begin(step)
            out = predict_batch(model, x)
            outputs.append(out)
            cbs.on_predict_batch_end(step, {"outputs": out})
        cbs.on_predict_end()
    except KeyboardInterrupt:
        stream.stop(INTERRUPT_GRACE)  # back to the user within about a second
        raise
    finally:
        stream.stop()
    if not outputs:
        raise ValueError("predict_generator received no batch to predict on.")
    return _concatenate(outputs)
