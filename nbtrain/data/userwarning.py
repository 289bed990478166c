"""Warnings that point at the user's line, not at nbtrain's own files."""

from __future__ import annotations

import sys
import warnings


def user_stacklevel() -> int:
    """The `stacklevel` of the innermost caller outside the `nbtrain` package, as
    seen from the function that calls `warnings.warn` (the caller of this one).

    On a thread nbtrain started (a Run's pass) no frame is the user's; the
    warning then points at the thread's entry.
    """
    frame = sys._getframe(2)  # the caller's caller: where the caller's stacklevel=2 points
    level = 2
    while frame is not None and frame.f_globals.get("__name__", "").split(".")[0] == "nbtrain":
        frame = frame.f_back
        level += 1
    return level if frame is not None else 1


def warn_user(message: str, category: type[Warning] = UserWarning) -> None:
    """`warnings.warn(message, category)` attributed to the user's code.

    Example:

    ```python
    warn_user("The generator ended after 3 of 10 steps in epoch 1; training stops here.")
    ```
    """
    warnings.warn(message, category, stacklevel=user_stacklevel())
