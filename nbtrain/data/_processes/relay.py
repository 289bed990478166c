"""The workers' stdout and stderr, relayed to the parent's.

Each worker writes to two pipes shared by the group; the collector thread
passes on what arrives, whole lines only, to the parent's `sys.stdout` /
`sys.stderr` (in Jupyter: the cell), leaving out TensorFlow's C++ start-up
log lines (`relay_line`), which the parent has shown once already.
"""

from __future__ import annotations

import os
import re
import sys

__all__ = ["OutputRelay", "relay_line"]

# TensorFlow's C++ log lines (absl format: severity I/W/E, date, time, thread,
# file:line]) and the two lines of its start-up banner that are not in that format.
_TF_NOISE = re.compile(
    r"^(?:[IWE]\d{4} [\d:.]+\s+\d+ \S+:\d+\] "
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|To enable the following instructions: .* rebuild TensorFlow with the appropriate "
    r"compiler flags\.)"
)


def relay_line(line: str) -> bool:
    """Whether a line a worker wrote to stdout/stderr goes to the user (not
    TensorFlow's start-up chatter, which the parent has shown once already)."""
    return _TF_NOISE.match(line) is None


class OutputRelay:
    """Two pipes (stdout, stderr) the workers write to, read by the collector."""

    def __init__(self):
        self._pipes: dict[int, list] = {}  # read fd -> [sink name, pending bytes]

    def open(self) -> tuple[int, int]:
        """Make the pipes; returns their write ends, for the workers (the caller
        closes them once the workers hold them)."""
        ends = []
        for sink in ("stdout", "stderr"):
            r, w = os.pipe()
            os.set_blocking(r, False)
            self._pipes[r] = [sink, b""]
            ends.append(w)
        return ends[0], ends[1]

    def fds(self) -> list[int]:
        """The read ends still open (to wait on)."""
        return list(self._pipes)

    def __contains__(self, fd: object) -> bool:
        return fd in self._pipes

    def relay(self, fd: int, final: bool = False) -> None:
        """Pass on what the workers wrote to `fd`, whole lines only (all of it if `final`)."""
        entry = self._pipes[fd]
        while True:
            try:
                data = os.read(fd, 1 << 16)
            except BlockingIOError:
                break
            except OSError:
                data = b""
            if not data:  # every worker has closed it
                del self._pipes[fd]
                os.close(fd)
                final = True
                break
            entry[1] += data
        lines = entry[1].split(b"\n")
        entry[1] = b"" if final else lines.pop()
        text = "".join(
            line + "\n" for line in (b.decode(errors="replace") for b in lines)
            if line and relay_line(line)
        )
        if text:
            sink = getattr(sys, entry[0], None)
            try:
                if sink is not None:
                    sink.write(text)
                    sink.flush()
            except (OSError, ValueError):  # a closed stream at exit
                pass

    def relay_all(self) -> None:
        """The workers are gone: pass on what they wrote last."""
        for fd in list(self._pipes):
            self.relay(fd, final=True)

    def close(self) -> None:
        """Close the read ends still open."""
        for fd in self._pipes:
            os.close(fd)
        self._pipes.clear()
