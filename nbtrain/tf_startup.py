"""TensorFlow's native start-up lines, held to `TF_CPP_MIN_LOG_LEVEL`.

Loading TensorFlow's native libraries logs before TensorFlow has read
`TF_CPP_MIN_LOG_LEVEL`: their static initialisers write through absl's logging,
which, until `absl::InitializeLog()`, sends every message to the process's
stderr, whatever the variable says.  TensorFlow 2.21 on a CPU machine writes,
twice (once for `_pywrap_cpu_feature_guard.so`, once for
`_pywrap_tensorflow_internal.so`, each with its own copy of the code)::

    WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
    I0000 00:00:1796631399.715806    7678 port.cc:153] oneDNN custom operations are on. ...
    I0000 00:00:1796631399.716220    7678 cudart_stub.cc:31] Could not find cuda drivers ...

No environment variable stops them (`TF_ENABLE_ONEDNN_OPTS=0` removes one line
and changes the numerics).  In Jupyter, ipykernel forwards the process's stderr
into the cell: red text in the import cell of every notebook.

`import nbtrain` installs `install()`: a one-shot import hook that, when
`tensorflow` is first imported (directly or by Keras), runs that import with
the process's stderr (file descriptor 2) held in a temporary file, then writes
back everything but the absl log lines below the level `TF_CPP_MIN_LOG_LEVEL`
asks for (1 when it is not set: informational lines written before TensorFlow
could apply any level), and absl's "All log messages before ..." preface when
no log line is left under it.  Warnings and errors of level 1 and 2, prints,
Python warnings and tracebacks written during the import all come through, in
order, once the import is done.  `tensorflow` imported before nbtrain is not
affected.  Nothing here imports TensorFlow.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from typing import Any

# absl's log line: severity, MMDD, time, thread id, file:line]
_LOG_LINE = re.compile(rb"^([IWEF])\d{4} [\d:.]+\s+\d+ \S+:\d+\] ")
_PREFACE = re.compile(rb"^WARNING: All log messages before absl::InitializeLog\(\) is called "
                      rb"are written to STDERR\s*$")
# The second line of cpu_feature_guard.cc's INFO message (the only multi-line one).
_CONTINUATION = re.compile(rb"^To enable the following instructions: .* rebuild TensorFlow "
                           rb"with the appropriate compiler flags\.\s*$")
_SEVERITY = {b"I": 0, b"W": 1, b"E": 2, b"F": 3}
DEFAULT_LEVEL = 1
"""The level applied when `TF_CPP_MIN_LOG_LEVEL` is not set: informational lines go."""


def min_log_level(environ: Any = None) -> int:
    """The level `TF_CPP_MIN_LOG_LEVEL` asks for (0 all, 1 no INFO, 2 no WARNING,
    3 no ERROR); `DEFAULT_LEVEL` when it is unset or not a number."""
    value = (os.environ if environ is None else environ).get("TF_CPP_MIN_LOG_LEVEL", "")
    try:
        return int(value.strip())
    except ValueError:
        return DEFAULT_LEVEL


def filter_startup(text: bytes, level: int) -> bytes:
    """`text` without the absl log lines of a severity below `level` (FATAL lines
    always stay), and without each absl preface no kept log line follows."""
    kept: list[bytes] = []
    dropped = False  # the last log line was dropped: its known continuation goes too
    for line in text.splitlines(keepends=True):
        match = _LOG_LINE.match(line)
        if match:
            dropped = _SEVERITY[match[1]] < level and match[1] != b"F"
        elif not (dropped and _CONTINUATION.match(line)):
            dropped = False
        if not dropped:
            kept.append(line)
    # A preface stays only above a log line that stays (before the next preface).
    result: list[bytes] = []
    needed = False
    for line in reversed(kept):
        if _PREFACE.match(line):
            if needed:
                result.append(line)
            needed = False
        else:
            needed = needed or bool(_LOG_LINE.match(line))
            result.append(line)
    return b"".join(reversed(result))


@contextlib.contextmanager
def held_stderr(level: int | None = None) -> Iterator[None]:
    """Hold what is written to file descriptor 2 (native code and, in a terminal,
    Python's `sys.stderr`) in a temporary file; at the end write it back, less
    the start-up lines `filter_startup` drops at `level` (default:
    `min_log_level()`).  Without a usable descriptor 2, does nothing."""
    level = min_log_level() if level is None else level
    with contextlib.suppress(Exception):
        sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            kept = filter_startup(held.read(), level)
            while kept:
                kept = kept[os.write(2, kept):]


class _HeldLoader:
    """The `tensorflow` package's own loader, its `exec_module` under `held_stderr`."""

    def __init__(self, loader: Any):
        self.loader = loader

    def create_module(self, spec: Any) -> Any:
        return self.loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        try:
            with held_stderr():
                self.loader.exec_module(module)
        finally:  # the module keeps its real loader
            module.__loader__ = self.loader
            if getattr(module, "__spec__", None) is not None:
                module.__spec__.loader = self.loader

    def __getattr__(self, name: str) -> Any:
        return getattr(self.loader, name)


class TensorFlowImportHook(importlib.abc.MetaPathFinder):
    """A `sys.meta_path` finder that takes part in the first import of
    `tensorflow` only (then removes itself): the package found as usual, its
    execution under `held_stderr`."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname != "tensorflow":
            return None
        with contextlib.suppress(ValueError):
            sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _HeldLoader(spec.loader)
        return spec


def install() -> None:
    """Install `TensorFlowImportHook` unless TensorFlow is imported already (or
    the hook is installed)."""
    if "tensorflow" in sys.modules:
        return
    if any(isinstance(finder, TensorFlowImportHook) for finder in sys.meta_path):
        return
    sys.meta_path.insert(0, TensorFlowImportHook())


__all__ = ["DEFAULT_LEVEL", "TensorFlowImportHook", "filter_startup", "held_stderr",
           "install", "min_log_level"]
