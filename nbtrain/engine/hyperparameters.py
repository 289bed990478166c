"""Live hyperparameters: which of an optimizer's hyperparameters can change while it
trains, the checks made before a change, and the change itself.

A compiled train step reads an optimizer's hyperparameter afresh at every step
only when it is a `keras.Variable` (in Keras 3: `learning_rate`, unless it is a
schedule); a Python float (`momentum`, `beta_1`, `weight_decay` of the built-in
optimizers) was baked into the step when it was traced, so changing the
attribute would silently do nothing.  Those are refused with a clear error.

A `LearningRateSchedule` is refused too (Keras's own setter refuses it): the
schedule is part of the traced step, and replacing it by a constant would
silently drop the schedule and need a new trace.

The engine applies a change (`LoopControls.set_hyperparameters`, on the
training thread, between two batches); who asks for it and when is the
caller's business (in nbtrain, `nbtrain.run.steering`).
"""

from __future__ import annotations

import math
import numbers
from typing import Any, NamedTuple

import numpy as np

LEARNING_RATE = "learning_rate"


class HyperparameterChange(NamedTuple):
    """One change of a hyperparameter, applied between two batches.

    Attributes:
        epoch: the epoch of the first batch trained with the new value (0-based).
        batch: that batch's index within the epoch.
        steps: batches in that epoch, when known (else None).
        name: the hyperparameter (`"learning_rate"`, ...).
        old: its value before.
        new: its value from that batch on.
    """

    epoch: int
    batch: int
    steps: int | None
    name: str
    old: float
    new: float

    @property
    def x(self) -> float:
        """Where the change sits in epochs (`epoch + batch / steps`): a plot's x."""
        return self.epoch + (self.batch / self.steps if self.steps else 0.0)


def _is_variable(value: Any) -> bool:
    import keras

    return isinstance(value, keras.Variable)


def _is_schedule(value: Any) -> bool:
    import keras

    return isinstance(value, keras.optimizers.schedules.LearningRateSchedule) or (
        callable(value) and not _is_variable(value))


def steerable_names(optimizer: Any) -> list[str]:
    """The names of `optimizer`'s hyperparameters that can change live, sorted:
    `learning_rate` when it is a variable, and every public attribute holding a
    scalar `keras.Variable` (not `iterations`, not the per-weight slots).

    Example:

    ```python
    steerable_names(keras.optimizers.SGD(0.1))   # -> ['learning_rate']
    ```
    """
    names: set[str] = set()
    if optimizer is None:
        return []
    if _is_variable(getattr(optimizer, "_learning_rate", None)):
        names.add(LEARNING_RATE)
    for name, value in vars(optimizer).items():
        if (not name.startswith("_") and name != "iterations" and _is_variable(value)
                and len(value.shape) == 0):
            names.add(name)
    return sorted(names)


def _variable(optimizer: Any, name: str) -> Any:
    if name == LEARNING_RATE:
        return optimizer._learning_rate  # noqa: SLF001 - Keras keeps its variable there
    return getattr(optimizer, name)


def check_hyperparameters(optimizer: Any, values: dict[str, Any]) -> dict[str, float]:
    """Check a change before anything happens; return the values as floats.

    Args:
        optimizer: the model's optimizer.
        values: hyperparameter name to new value.

    Raises:
        ValueError: no values, an unknown name, a hyperparameter that is not a
            variable (or a learning-rate schedule), a value that is not finite
            (or a negative learning rate).
        TypeError: a value that is not a real number.
    """
    if not values:
        raise ValueError("Give at least one hyperparameter to set, e.g. learning_rate=1e-3.")
    if optimizer is None:
        raise ValueError("The model has no optimizer: compile it first.")
    kind = type(optimizer).__name__
    steerable = steerable_names(optimizer)
    out = {}
    for name, value in values.items():
        if name == LEARNING_RATE and _is_schedule(getattr(optimizer, "_learning_rate", None)):
            schedule = type(optimizer._learning_rate).__name__  # noqa: SLF001 - see _variable
            raise ValueError(
                f"The learning rate of this {kind} is a schedule ({schedule}); nbtrain "
                "refuses to replace it by a constant (the schedule is part of the compiled "
                "train step).  Compile with a float learning_rate to steer it live.")
        if name not in steerable:
            if name == LEARNING_RATE or hasattr(optimizer, name):
                current = getattr(optimizer, name, None)
                raise ValueError(
                    f"`{name}` of {kind} is a {type(current).__name__}, not a keras.Variable: "
                    "it was fixed in the compiled train step when it was traced, so it cannot "
                    f"change while training.  Hyperparameters that can: {steerable}.")
            raise ValueError(f"{kind} has no hyperparameter `{name}`; those that can change "
                             f"while training: {steerable}.")
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"`{name}` must be a real number, got {value!r}.")
        value = float(value)
        if not math.isfinite(value) or (name == LEARNING_RATE and value < 0):
            raise ValueError(f"`{name}` must be a finite number"
                             f"{' >= 0' if name == LEARNING_RATE else ''}, got {value!r}.")
        out[name] = value
    return out


def scalar_value(value: Any) -> float:
    """A scalar variable's or tensor's value (any backend, a `tf.distribute` variable
    too) as a float.

    Not through `keras.ops.convert_to_numpy`, which under NumPy 2 warns at every
    read (a DeprecationWarning: Keras's and the backends' `__array__` take no
    copy keyword), and a dashboard showing the training's warnings would show
    it: `float()`, or, for a `MirroredVariable` (which `float()` refuses),
    `np.asarray`, which does not warn on TensorFlow (it does on PyTorch).
    """
    try:
        return float(value)
    except TypeError:  # a tf.distribute variable
        return float(np.asarray(value))


def read_hyperparameter(optimizer: Any, name: str) -> float:
    """The current value of a steerable hyperparameter, as a float."""
    return scalar_value(_variable(optimizer, name))


def assign_hyperparameters(optimizer: Any, values: dict[str, float]) -> dict[str, float]:
    """Assign checked values (`check_hyperparameters`); return the old ones.

    Call it between two steps.  Under a `tf.distribute` strategy the variables
    are mirrored and an assignment from outside the step reaches every replica.
    """
    old = {}
    for name, value in values.items():
        variable = _variable(optimizer, name)
        old[name] = read_hyperparameter(optimizer, name)
        variable.assign(value)
    return old


__all__ = ["LEARNING_RATE", "HyperparameterChange", "assign_hyperparameters",
           "check_hyperparameters", "read_hyperparameter", "steerable_names"]
