"""Plain-text pieces every layer writes the same way (no imports: any layer may use it).

- `format_duration`: `m:ss` / `h:mm:ss` (the text progress, the dashboard);
- `epoch_fraction`, `batch_fraction`: the `2/5` and `13/100` of a position
  (`repr(run)`, the text status, `%nbtrain status`);
- `format_number`, `number_format`: the one way nbtrain's own displays write a
  metric value (the dashboard's table and rate, its snapshot, the text status,
  `%nbtrain status`): at least 4 significant digits, and the same decimals for
  values shown side by side (a metric's column);
- `format_logs`: Keras logs in a line, `loss: 0.3850 - val_loss: 0.4012` (the
  text status's epoch lines);
- `format_learning_rate`, `as_written`: a learning rate as a person writes it
  (`0.001`, `3e-4`), without the float32 noise of the optimizer's variable
  (`0.0010000000474974513`).

Keras's own progress bar (`verbose=1`, `nbtrain.engine.progress`) keeps
Keras's format (`0.3850`, `2.5000e-04`): it prints what `model.fit` prints.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable


def format_duration(seconds: float | None) -> str:
    """`m:ss` or `h:mm:ss`; `–` when unknown.

    Args:
        seconds: a duration (None, a negative or non-finite one is unknown).

    Returns:
        The text.

    Example:

    ```python
    format_duration(83)    # -> "1:23"
    format_duration(3723)  # -> "1:02:03"
    ```
    """
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "–"
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
    return f"{seconds // 60}:{seconds % 60:02d}"


def epoch_fraction(epoch: int, epochs: int) -> str:
    """`3/5`: the 1-based epoch in progress (0-based `epoch`; `epochs` once all are done).

    Example:

    ```python
    epoch_fraction(2, 5)   # -> "3/5"
    epoch_fraction(5, 5)   # -> "5/5"
    ```
    """
    return f"{min(epoch + 1, epochs)}/{epochs}"


def batch_fraction(batch: int, steps: int | None, epoch: int = 0, epochs: int = 0) -> str:
    """`13/100`: batches trained of the epoch's steps (`?` when unknown).

    Given the run's `epoch` and `epochs`: past the last epoch (`epoch >= epochs`),
    the last epoch shows complete, `100/100`, not the `0/100` of an epoch that
    will not come.

    Example:

    ```python
    batch_fraction(13, None)         # -> "13/?"
    batch_fraction(0, 100, 5, 5)     # -> "100/100"
    ```
    """
    if steps and not batch and epoch >= epochs > 0:
        batch = steps
    return f"{batch}/{steps if steps else '?'}"


DIGITS = 4
"""Significant digits a metric value shows (at least)."""

_SMALL, _LARGE = 1e-4, 1e5  # outside [_SMALL, _LARGE) a column is written 1.234e-05


def number_format(values: Iterable[float | None], digits: int = DIGITS) -> str:
    """The format spec (`".4f"`, `".3e"`) that writes each of `values` with at least
    `digits` significant digits and all of them with the same decimals, so a
    column lines up at its decimal point.

    Fixed decimals, set by the smallest value, and at least `digits` of them
    while every value is under 10 (Keras's `0.3850`, `1.0000`: a loss that
    falls below 1 keeps its decimals), while every value lies in [1e-4, 1e5);
    else scientific notation, `digits` significant digits each.  None, zero
    and non-finite values do not count.

    Example:

    ```python
    number_format([2.302585, 0.4123])   # -> ".4f": "2.3026", "0.4123"
    number_format([0.0123, 0.00098])    # -> ".7f": "0.0123000", "0.0009800"
    number_format([3e-6, 0.5])          # -> ".3e"
    ```
    """
    sizes = [abs(v) for v in values if v is not None and math.isfinite(v) and v != 0]
    if not sizes:
        return f".{digits}f"
    small, large = min(sizes), max(sizes)
    if small < _SMALL or large >= _LARGE:
        return f".{max(digits - 1, 0)}e"
    # a value in [1, 10) has one digit before the point; each decade below adds one
    decimals = max(digits - 1 - math.floor(math.log10(small)), 0)
    return f".{max(decimals, digits) if large < 10 else decimals}f"


def format_number(value: float | None, spec: str | None = None) -> str:
    """A metric value as nbtrain's displays write it; `–` for none.

    Args:
        value: the number (None: unknown).
        spec: a format from `number_format` shared by the values shown beside
            it (default: the value's own, `number_format([value])`).

    Example:

    ```python
    format_number(0.123456)          # -> "0.1235"
    format_number(2.302585)          # -> "2.3026"
    format_number(12345.6)           # -> "12346"
    format_number(float("nan"))      # -> "nan"
    ```
    """
    if value is None:
        return "–"
    value = float(value)
    if not math.isfinite(value):
        return str(value)
    return format(value, spec or number_format([value]))


def format_logs(logs: dict | None) -> str:
    """`loss: 0.3850 - val_loss: 0.4012 - accuracy: 0.8812`: the numbers in Keras
    logs, in their order, each metric and its `val_` in one format.

    Example:

    ```python
    format_logs({"loss": 0.0123, "val_loss": 0.5})   # -> "loss: 0.01230 - val_loss: 0.50000"
    ```
    """
    values = {}
    for key, value in (logs or {}).items():
        try:
            values[key] = float(value)
        except (TypeError, ValueError):
            continue
    specs = {}
    for key in values:
        name = key.removeprefix("val_")
        specs[key] = number_format([values.get(name), values.get(f"val_{name}")])
    return " - ".join(f"{key}: {format_number(value, specs[key])}"
                      for key, value in values.items())


def _float32(value: float) -> float:
    return struct.unpack("f", struct.pack("f", value))[0]


def as_written(value: float) -> float:
    """`value` without float32 noise: the shortest decimal that is the same float32
    (`0.0010000000474974513` -> `0.001`); a value that is no float32 is returned as is.

    A number field shows this, not the optimizer variable's `0.00100000004`.

    Example:

    ```python
    as_written(float(numpy.float32(0.001)))   # -> 0.001
    ```
    """
    value = float(value)
    if not math.isfinite(value) or value == 0:
        return value
    try:
        single = _float32(value)
    except OverflowError:
        return value
    if single != value:
        return value  # a float64 the user wrote: its repr is already the shortest
    for precision in range(1, 10):
        shortest = float(f"{value:.{precision}g}")
        if _float32(shortest) == single:
            return shortest
    return value


def format_learning_rate(value: float | None) -> str:
    """A learning rate as a person writes it: `0.001`, `0.01`, `3e-4`, `2.5e-5`
    (positional from 0.001 up, else a short exponent; float32 noise removed).

    Example:

    ```python
    format_learning_rate(0.0010000000474974513)   # -> "0.001"
    format_learning_rate(0.0003)                   # -> "3e-4"
    format_learning_rate(None)                     # -> "–"
    ```
    """
    if value is None:
        return "–"
    value = as_written(value)
    if not math.isfinite(value) or value == 0:
        return str(value) if value else "0"
    if 1e-3 <= abs(value) < 1e6:
        text = repr(value)
        return text[:-2] if text.endswith(".0") else text
    for precision in range(17):  # the fewest digits that are still this value
        text = f"{value:.{precision}e}"
        if float(text) == value:
            break
    mantissa, exponent = text.split("e")
    return f"{mantissa}e{int(exponent)}"


__all__ = ["DIGITS", "as_written", "batch_fraction", "epoch_fraction", "format_duration",
           "format_learning_rate", "format_logs", "format_number", "number_format"]
