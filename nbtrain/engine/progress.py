"""Text progress for `verbose=1` (a bar per epoch) and `verbose=2` (a line per epoch).

The bar is redrawn in place at most 10 times a second, so it never floods a
notebook or a terminal; where the output is neither (a pipe or a log file)
only the final line of each epoch is written.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

import keras

from nbtrain.text import format_duration


def format_logs(logs: dict | None) -> str:
    parts = []
    for key, value in (logs or {}).items():
        try:
            parts.append(f"{key}: {float(value):.4g}")
        except (TypeError, ValueError):
            continue
    return " - ".join(parts)


def _interactive(stream: TextIO) -> bool:
    if "ipykernel" in sys.modules and type(stream).__module__.startswith("ipykernel"):
        return True
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class TextProgress(keras.callbacks.Callback):
    """A Keras callback printing training progress as text.

    Args:
        verbose: 1 for a bar updated in place, 2 for one line per epoch.
        stream: where to write (default `sys.stdout`, looked up at each write).
        interval: minimum seconds between two redraws of the bar.
    """

    def __init__(self, verbose: int = 1, stream: TextIO | None = None, interval: float = 0.1):
        super().__init__()
        self.verbose = verbose
        self._stream = stream
        self.interval = interval
        self.writes = 0
        self._epoch = 0
        self._last_draw = 0.0
        self._start = 0.0
        self._seen = 0

    @property
    def stream(self) -> TextIO:
        return self._stream or sys.stdout

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()
        self.writes += 1

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch = epoch
        self._start = time.monotonic()
        self._last_draw = 0.0
        self._seen = 0
        if self.verbose == 1:
            self._write(f"Epoch {epoch + 1}/{self.params.get('epochs', '?')}\n")

    def _bar(self, done: int, logs: dict | None, final: bool = False) -> str:
        steps = self.params.get("steps")
        elapsed = time.monotonic() - self._start
        if steps:
            width = 30
            filled = min(width, int(width * done / steps))
            bar = "=" * filled + ("" if filled == width else ">") + "." * (width - filled - 1)
            head = f"{done}/{steps} [{bar[:width]}]"
            if final or done >= steps:
                timing = f"{format_duration(elapsed)} {1000 * elapsed / max(done, 1):.0f}ms/step"
            else:
                eta = elapsed / max(done, 1) * (steps - done)
                timing = f"ETA: {format_duration(eta)}"
        else:
            head, timing = f"{done}", f"{format_duration(elapsed)}"
        metrics = format_logs(logs)
        return f"{head} - {timing}" + (f" - {metrics}" if metrics else "")

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._seen = batch + 1
        if self.verbose != 1 or not _interactive(self.stream):
            return
        now = time.monotonic()
        if now - self._last_draw >= self.interval:
            self._last_draw = now
            self._write("\r" + self._bar(self._seen, logs))

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.verbose == 1:
            prefix = "\r" if _interactive(self.stream) else ""
            self._write(prefix + self._bar(self._seen, logs, final=True) + "\n")
        elif self.verbose == 2:
            elapsed = time.monotonic() - self._start
            line = f"Epoch {epoch + 1}/{self.params.get('epochs', '?')} - {format_duration(elapsed)}"
            metrics = format_logs(logs)
            self._write(line + (f" - {metrics}" if metrics else "") + "\n")


def make_progress(verbose: Any) -> keras.callbacks.Callback | None:
    """The progress callback for a `verbose` value (None for 0)."""
    if verbose in (0, False, None, "silent"):
        return None
    if verbose == "auto":
        verbose = 1
    if verbose not in (1, 2):
        raise ValueError(f"verbose must be 0, 1 or 2, got {verbose!r}.")
    return TextProgress(verbose)
