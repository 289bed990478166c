"""The first batch, checked against the model in the caller's thread.

`nbtrain.fit`, `Run`, `fit_generator`, `evaluate_generator` and
`predict_generator` read the first batch the loop will use before any
callback or worker starts, check it against the model, and hand it to the
loop (it is trained, not read twice).  A mismatch raises a `ValueError` in the
caller naming the input, the expected and the received shape, and what to do.

Keras's own checks stay the authority; these only move them earlier:

- inputs: the batch's structure and shapes against `model.inputs` (models
  whose inputs are known: Functional and Sequential).  A shape that differs is
  confirmed by Keras before it is refused: the model is called on the batch
  (`training=False`) and only an error from that call refuses
  it, so a model that accepts the shape (a first layer that slices its input)
  is not refused;
- targets, for Keras's built-in losses only (a custom loss may ignore them):
  the number of targets against the number of outputs, the number of rows
  against the inputs', one-hot targets' width for `categorical_crossentropy`,
  and label values against the number of classes for
  `sparse_categorical_crossentropy` (on TensorFlow and PyTorch Keras fails on
  them at the first step; on JAX it trains on garbage);
- `batch_size` larger than the arrays: a warning.

How the batch is read without disturbing exact resume or the enqueuers: a
Sequence's batch `order[0]` is read here and the cursor moves past it (with
process workers it is read from an in-process copy, so the object sent to the
workers stays as it was); a generator's first item is taken and given back to
the stream; a generator read by worker processes is checked on the first item
of a copy (that item is read twice: once here, once by a worker).
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from nbtrain.data import ArraySequence
from nbtrain.data.userwarning import warn_user
from nbtrain.engine.batches import unpack_batch, unpack_inputs
from nbtrain.engine.recovery import add_note, plain
from nbtrain.engine.stream import DataExhausted

SPARSE = ("sparse_categorical_crossentropy",)
CATEGORICAL = ("categorical_crossentropy",)


# -- reading the first batch ----------------------------------------------------------


def _copy_sequence(sequence: Any) -> Any:
    """An in-process copy of `sequence`, made as the workers' are (arrays shared)."""
    import pickle

    from nbtrain.data._processes.pickling import dumps

    buffers: list = []
    data = dumps(sequence, protocol=5, buffer_callback=buffers.append)
    return pickle.loads(data, buffers=buffers)


def read_first(stream: Any, processes: bool) -> tuple[Any, bool]:
    """The first raw item of `stream` and whether it was taken from it (then the
    caller gives it back with `stream.unread([stream.transform(item)])`).

    An error reading it is raised as it is, with a note naming the batch (a
    Sequence's own index) and that it was read to be checked."""
    try:
        return _read_first(stream, processes)
    except Exception as exc:
        name = type(stream.data).__name__
        if stream.is_sequence and stream.cursor.order:
            name = f"{name}[{stream.cursor.peek()}]"
        add_note(exc, f"Reading the first batch ({name}) to check it against the model, "
                      "before training started, failed: fix the data, then train again.")
        raise


def _read_first(stream: Any, processes: bool) -> tuple[Any, bool]:
    if stream.is_sequence:
        reader = _copy_sequence(stream.data).__getitem__ if processes else None
        return stream.first(reader), True
    if processes:  # the workers copy the generator: check a copy's first item
        from nbtrain.data._processes.pickling import generator_payload, make_iterator

        copy = make_iterator(generator_payload(stream.data))
        try:
            return next(copy), False
        except StopIteration:
            return None, False
        finally:
            close = getattr(copy, "close", None)
            if close is not None:
                close()
    try:
        return stream.first(), True
    except DataExhausted:  # an empty generator: the loop says so at its first step
        return None, False


# -- what the model expects ------------------------------------------------------------


def _model_inputs(model: Any) -> list | None:
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        return None
    return list(inputs) if inputs else None


def _model_outputs(model: Any) -> list | None:
    try:
        outputs = model.outputs
    except (AttributeError, ValueError):
        return None
    return list(outputs) if outputs else None


def _shape(value: Any) -> tuple | None:
    shape = getattr(value, "shape", None)
    if shape is None:
        return None
    try:
        return tuple(None if d is None else int(d) for d in shape)
    except TypeError:
        return None


def _leaves_by_input(x: Any, inputs: list) -> list[tuple[Any, Any]] | None:
    """`(input, leaf)` pairs, or None when the structure cannot be matched for sure."""
    if isinstance(x, dict):
        names = {getattr(i, "name", None): i for i in inputs}
        if not set(x) <= set(names):
            return None
        return [(names[k], v) for k, v in x.items()]
    if isinstance(x, (list, tuple)):
        if len(inputs) == 1 or len(x) != len(inputs):
            return None
        return list(zip(inputs, x))
    if len(inputs) != 1:
        return None
    return [(inputs[0], x)]


def _fits(expected: tuple, received: tuple) -> bool:
    """Keras adjusts a rank that differs by a trailing 1; other dims must match."""
    if len(received) == len(expected) + 1 and received[-1] == 1:
        received = received[:-1]
    elif len(expected) == len(received) + 1 and expected[-1] == 1:
        expected = expected[:-1]
    if len(expected) != len(received):
        return False
    return all(e is None or e == r for e, r in zip(expected[1:], received[1:]))


def _keras_refuses(model: Any, x: Any) -> BaseException | None:
    """Keras's own verdict: the error of calling the model on the batch `x`."""
    try:
        model(x, training=False)
    except Exception as exc:  # noqa: BLE001 - Keras refused: that is the answer
        return exc
    return None


def check_inputs(model: Any, x: Any, what: str) -> None:
    """Refuse `x` if it does not fit `model`'s inputs and Keras refuses it too."""
    inputs = _model_inputs(model)
    if inputs is None or x is None:
        return
    pairs = _leaves_by_input(x, inputs)
    if pairs is None:
        _check_count(model, x, inputs, what)
        return
    for position, (spec, leaf) in enumerate(pairs):
        expected, received = _shape(spec), _shape(leaf)
        if expected is None or received is None or _fits(expected, received):
            continue
        error = _keras_refuses(model, x)
        if error is None:
            return
        name = _name(spec, position, getattr(model, "input_names", None), "input")
        want = ", ".join("any" if d is None else str(d) for d in expected[1:])
        raise ValueError(
            f"{what} does not fit the model: {name} expects shape "
            f"{_text(expected)}, but the first batch has shape {_text(received)}. Make the "
            f"batches' shape (batch, {want}), or build the model for the data "
            f"(keras.Input(shape={received[1:]})). Keras says: {_first_line(error)}"
        ) from error


def _name(tensor: Any, position: int, names: Any, kind: str) -> str:
    """`input 'image'`, or `input 0` for Keras's generated names."""
    name = getattr(tensor, "name", None)
    if (not name or name.startswith("keras_tensor")) and names and position < len(names):
        name = names[position]
    if not name or name.startswith(("keras_tensor", "input_layer")):
        return f"{kind} {position}"
    return f"{kind} {name!r}"


def _check_count(model: Any, x: Any, inputs: list, what: str) -> None:
    """Refuse a number of input arrays other than the model's, if Keras refuses it too."""
    if isinstance(x, dict):
        return
    received = len(x) if isinstance(x, (list, tuple)) else 1
    if received == len(inputs) or (received == 1 and len(inputs) == 1):
        return
    error = _keras_refuses(model, x)
    if error is None:
        return
    names = ", ".join(_name(spec, i, getattr(model, "input_names", None), "input")
                      for i, spec in enumerate(inputs))
    raise ValueError(
        f"{what} does not fit the model: it has {len(inputs)} input"
        f"{'s' if len(inputs) != 1 else ''} ({names}), but the first batch's `x` is "
        f"{received} array{'s' if received != 1 else ''}. Give one array per input, in the "
        f"order of `model.inputs` (or a dict by input name). Keras says: {_first_line(error)}"
    ) from error


def _text(shape: tuple) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + \
        ("," if len(shape) == 1 else "") + ")"


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in plain(str(error)).splitlines()]
    lines = [line for line in lines if line and not line.startswith("Exception encountered")]
    return lines[0] if lines else type(error).__name__


def _loss_name(loss: Any) -> str | None:
    """The name of a built-in Keras loss (a string, a function or a Loss
    instance of Keras's own classes), None for any other loss."""
    if isinstance(loss, str):
        import keras

        try:
            loss = keras.losses.get(loss)
        except Exception:  # noqa: BLE001 - not a Keras loss name
            return None
    kind = loss if inspect.isfunction(loss) else type(loss)
    if not str(getattr(kind, "__module__", "")).startswith("keras"):
        return None
    return _CLASSES.get(kind.__name__, kind.__name__)


_CLASSES = {"SparseCategoricalCrossentropy": "sparse_categorical_crossentropy",
            "CategoricalCrossentropy": "categorical_crossentropy"}


def _ignore_class(loss: Any) -> Any:
    config = getattr(loss, "get_config", None)
    if config is None:
        return None
    try:
        return config().get("ignore_class")
    except Exception:  # noqa: BLE001
        return None


def _losses(model: Any, n: int) -> list | None:
    loss = getattr(model, "loss", None)
    if loss is None or isinstance(loss, dict):
        return None
    if isinstance(loss, (list, tuple)):
        return list(loss) if len(loss) == n else None
    return [loss] * n


def check_targets(model: Any, x: Any, y: Any, what: str) -> None:
    """Refuse targets `y` that Keras's built-in loss is certain to refuse."""
    outputs = _model_outputs(model)
    if outputs is None or y is None or isinstance(y, dict):
        return
    losses = _losses(model, len(outputs))
    if losses is None or any(_loss_name(loss) is None for loss in losses):
        return
    targets = list(y) if isinstance(y, (list, tuple)) else [y]
    if any(_shape(target) is None for target in targets):
        return  # plain lists of numbers: Keras converts them; nothing certain here
    if len(targets) != len(outputs):
        raise ValueError(
            f"{what}: the model has {len(outputs)} output{'s' if len(outputs) != 1 else ''} "
            f"but the first batch has {len(targets)} target{'s' if len(targets) != 1 else ''} "
            "(`y`). Give one target per output, in the order of `model.outputs`.")
    rows = _rows(x)
    names = getattr(model, "output_names", None)
    for position, (output, loss, target) in enumerate(zip(outputs, losses, targets)):
        name = _name(output, position, names, "output")
        shape, out = _shape(target), _shape(output)
        if shape is None or out is None or not shape:
            continue
        if rows is not None and shape[0] not in (rows, 1) and rows != 1:
            raise ValueError(
                f"{what}: the first batch has {rows} samples in `x` but {shape[0]} in `y`; "
                "each batch needs as many targets as inputs.")
        loss_name, units = _loss_name(loss), out[-1]
        if loss_name in SPARSE and units:
            _check_labels(target, units, _ignore_class(loss), name, what)
        if loss_name in CATEGORICAL and units and _one_hot_width(shape, out) != units:
            raise ValueError(
                f"{what}: categorical_crossentropy needs one-hot targets of width {units} "
                f"(the model's {name} has {units} units), but the first batch's targets have "
                f"shape {_text(shape)}. For integer class labels use "
                "loss='sparse_categorical_crossentropy'; else one-hot encode them "
                f"(keras.utils.to_categorical(y, {units})).")


def _one_hot_width(target: tuple, output: tuple) -> int | None:
    if len(target) == len(output) - 1:
        return 1  # Keras expands the rank, then compares the shapes
    if len(target) != len(output):
        return None
    return target[-1]


def _rows(x: Any) -> int | None:
    while isinstance(x, (list, tuple, dict)) and x:
        x = next(iter(x.values())) if isinstance(x, dict) else x[0]
    shape = _shape(x)
    return shape[0] if shape else None


def _check_labels(target: Any, units: int, ignore: Any, name: str, what: str) -> None:
    try:
        labels = np.asarray(target)
    except Exception:  # noqa: BLE001 - a tensor that does not convert: Keras checks it
        return
    if labels.dtype.kind not in "iuf" or labels.size == 0:
        return
    labels = labels.astype(np.int64) if labels.dtype.kind == "f" else labels
    if ignore is not None:
        labels = labels[labels != ignore]
    if labels.size == 0:
        return
    low, high = int(labels.min()), int(labels.max())
    if low >= 0 and high < units:
        return
    bad = high if high >= units else low
    raise ValueError(
        f"{what}: label {bad} is not a class of the model: its {name} has {units} "
        f"unit{'s' if units != 1 else ''}, so sparse_categorical_crossentropy needs labels in "
        f"0..{units - 1} (the first batch's labels are {low}..{high}). Give the last layer one "
        "unit per class, or check the labels.")


def warn_batch_size(data: Any) -> None:
    """Warn once when arrays are batched by more than their number of samples."""
    if isinstance(data, ArraySequence) and data.batch_size > data.n:
        warn_user(f"batch_size={data.batch_size} is larger than the {data.n} samples of `x`: "
                  f"every epoch is one batch of {data.n}. Pass a smaller batch_size.")


# -- the entry points ------------------------------------------------------------------


def _source(data: Any, api: str) -> str:
    name = "`x`" if api == "fit" else "`generator`"
    if isinstance(data, ArraySequence):
        return name
    return f"{name} ({type(data).__name__})"


def check_training(loop: Any) -> None:
    """Check the first training batch of a `FitLoop` and keep it for the loop."""
    config, stream = loop.config, loop.train_stream
    warn_batch_size(config.data)
    processes = config.use_multiprocessing and config.workers > 0
    item, taken = read_first(stream, processes)
    if item is None:
        return
    what = _source(config.data, config.api)
    x, y, _ = unpack_batch(item)
    check_inputs(loop.model, x, what)
    arrays = isinstance(config.data, ArraySequence)
    check_targets(loop.model, x, y, "`y`" if arrays else f"the targets of {what}")
    if taken:
        stream.unread([stream.transform(item)])


def check_stream(model: Any, stream: Any, targets: bool, use_multiprocessing: bool) -> None:
    """Check the first batch of an `evaluate_generator` (`targets`) or
    `predict_generator` stream and keep it for the loop."""
    processes = use_multiprocessing and stream.workers > 0
    item, taken = read_first(stream, processes)
    if item is None:
        return
    what = f"`generator` ({type(stream.data).__name__})"
    if targets:
        x, y, _ = unpack_batch(item, "evaluation generator")
        check_inputs(model, x, what)
        check_targets(model, x, y, f"the targets of {what}")
    else:
        check_inputs(model, unpack_inputs(item), what)
    if taken:
        stream.unread([stream.transform(item)])


__all__ = ["check_inputs", "check_stream", "check_targets", "check_training", "read_first",
           "warn_batch_size"]
