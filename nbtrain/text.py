"""Plain-text pieces every layer writes the same way (no imports: any layer may use it).

- `format_duration`: `m:ss` / `h:mm:ss` (the text progress, the dashboard);
- `epoch_fraction`, `batch_fraction`: the `2/5` and `13/100` of a position
  (`repr(run)`, the text status, `%nbtrain status`).
"""

from __future__ import annotations

import math


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


__all__ = ["batch_fraction", "epoch_fraction", "format_duration"]
