"""Shared-memory transport of batches from worker processes to the consumer.

A worker owns a few *slots*; each slot is one shared-memory segment, created
on first use and replaced by a larger one when a batch does not fit (so a ring
of reusable segments, sized on demand).  A batch is written as:

    [header][padding][array 0][array 1]...

The header is a small pickle of the batch's *skeleton*: its tuples, lists,
dicts and namedtuples, with each NumPy array replaced by a reference to a
(dtype, shape, offset) entry.  Array bytes are copied straight into the
segment and out of it into fresh arrays on the consumer's side: they never go
through pickle.  Anything else in the batch (strings, numbers, object arrays,
other types) is pickled inside the header.

Segment names start with `nbtrain_<pid>_<token>_` (`new_prefix`), so whatever
way a run ends, the pool that owns the token can remove every segment its
workers may have left (`sweep`), and any later pool removes the segments of a
creator that is dead (`sweep_orphans`).

Segments are `Segment`s, not `multiprocessing.shared_memory.SharedMemory`:
the stdlib class registers every segment it creates or attaches with
multiprocessing's resource tracker, a process that inherits its parent's
stdout and stderr (in Jupyter: the kernel's output pipes, which a graceful
kernel shutdown then waits on) and dies with the parent's process group
anyway.  nbtrain cleans up by names instead.
"""

from __future__ import annotations

import errno
import mmap
import os
import pickle
import re
import secrets
import struct
from typing import Any

import numpy as np

PREFIX = "nbtrain_"
_SHM_DIR = "/dev/shm"
_ALIGN = 64
_GRANULE = 1 << 16
_SIZE = struct.Struct("<Q")


def new_prefix() -> str:
    """A fresh name prefix for one pool's segments: `nbtrain_<pid>_<random>_`."""
    return f"{PREFIX}{os.getpid()}_{secrets.token_hex(3)}_"


_ORPHAN = re.compile(rf"^{PREFIX}(\d+)_")


def _shm_open(name: str, flags: int) -> int:
    try:
        import _posixshmem
    except ImportError:  # no POSIX shared memory API module: /dev/shm is the namespace
        return os.open(os.path.join(_SHM_DIR, name), flags, 0o600)
    return _posixshmem.shm_open("/" + name, flags, mode=0o600)


def _shm_unlink(name: str) -> None:
    try:
        import _posixshmem
    except ImportError:
        os.unlink(os.path.join(_SHM_DIR, name))
        return
    _posixshmem.shm_unlink("/" + name)


class Segment:
    """A named POSIX shared-memory segment, mapped into this process.

    Args:
        name: the segment's name (no leading slash).
        create: create it (it must not exist) with `size` bytes, else attach.
        size: its size when created.

    Raises:
        FileNotFoundError: attaching a segment that does not exist.
        ValueError: attaching an empty segment (its creator died before sizing it).
    """

    def __init__(self, name: str, create: bool = False, size: int = 0):
        flags = os.O_RDWR | (os.O_CREAT | os.O_EXCL if create else 0)
        fd = _shm_open(name, flags)
        try:
            if create:
                os.ftruncate(fd, size)
            else:
                size = os.fstat(fd).st_size
                if size == 0:
                    raise ValueError(f"shared-memory segment {name!r} is empty")
            self._fd = fd
            self._mmap = mmap.mmap(fd, size)
        except BaseException:
            os.close(fd)
            if create:
                _shm_unlink(name)
            raise
        self.name = name
        self.size = size
        self.buf: memoryview | None = memoryview(self._mmap)

    def fileno(self) -> int:
        """The segment's file descriptor (open until `close`)."""
        return self._fd

    def close(self) -> None:
        """Unmap it (views into `buf` must be gone); safe to call twice."""
        if self.buf is not None:
            self.buf.release()
            self.buf = None
            self._mmap.close()
            os.close(self._fd)

    def unlink(self) -> None:
        """Remove its name (the memory goes once nobody maps it)."""
        _shm_unlink(self.name)


def _align(n: int, to: int = _ALIGN) -> int:
    return -(-n // to) * to


def dumps(obj: Any) -> bytes:
    """Pickle `obj`; fall back to cloudpickle (by value) when pickle cannot."""
    try:
        return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # noqa: BLE001 - lambdas, __main__ classes in a worker, ...
        import cloudpickle

        return cloudpickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)


def _flatten(obj: Any, arrays: list[np.ndarray]) -> tuple:
    kind = type(obj)
    if kind is np.ndarray and not obj.dtype.hasobject:
        arrays.append(obj)
        return ("a", len(arrays) - 1)
    if kind is tuple:
        return ("t", [_flatten(v, arrays) for v in obj])
    if kind is list:
        return ("l", [_flatten(v, arrays) for v in obj])
    if kind is dict:
        return ("d", list(obj), [_flatten(v, arrays) for v in obj.values()])
    if isinstance(obj, tuple) and hasattr(kind, "_fields"):
        return ("n", kind, [_flatten(v, arrays) for v in obj])
    return ("o", obj)


def _build(spec: tuple, arrays: list[np.ndarray]) -> Any:
    kind = spec[0]
    if kind == "a":
        return arrays[spec[1]]
    if kind == "t":
        return tuple(_build(s, arrays) for s in spec[1])
    if kind == "l":
        return [_build(s, arrays) for s in spec[1]]
    if kind == "d":
        return {k: _build(s, arrays) for k, s in zip(spec[1], spec[2])}
    if kind == "n":
        return spec[1](*(_build(s, arrays) for s in spec[2]))
    return spec[1]


class Packed:
    """A batch split into a pickled header and the arrays to copy after it."""

    __slots__ = ("arrays", "header", "layout", "nbytes")

    def __init__(self, obj: Any):
        self.arrays: list[np.ndarray] = []
        spec = _flatten(obj, self.arrays)
        self.layout = []
        offset = 0
        for a in self.arrays:
            self.layout.append((a.dtype, a.shape, offset))
            offset = _align(offset + a.nbytes)
        self.header = dumps((spec, self.layout))
        self.nbytes = _align(len(self.header)) + offset

    def write_into(self, buf: memoryview) -> None:
        """Write header and arrays into `buf` (at least `nbytes` long)."""
        buf[: len(self.header)] = self.header
        base = _align(len(self.header))
        for a, (dtype, shape, offset) in zip(self.arrays, self.layout):
            if a.nbytes:
                dst = np.ndarray(shape, dtype, buffer=buf, offset=base + offset)
                np.copyto(dst, a, casting="no")
                del dst


def unpack(buf: memoryview, header_size: int) -> Any:
    """Read a batch written by `Packed.write_into`, copying every array out of `buf`."""
    spec, layout = pickle.loads(buf[:header_size])
    base = _align(header_size)
    arrays = []
    for dtype, shape, offset in layout:
        view = np.ndarray(shape, dtype, buffer=buf, offset=base + offset) if np.prod(shape) else None
        arrays.append(np.empty(shape, dtype) if view is None else view.copy())
        del view
    return _build(spec, arrays)


def create(name: str, size: int, what: str | None = None) -> Segment:
    """Create segment `name` of at least `size` bytes (rounded up to 64 KiB).

    The memory is reserved at once where the platform allows, so a full
    /dev/shm is an `OSError` here rather than a SIGBUS at the first write.

    Args:
        name: the segment's name.
        size: bytes needed.
        what: what it is for, in the error message (default: "a <size>-byte batch").
    """
    full = _align(max(size, 1), _GRANULE)
    try:
        segment = Segment(name, create=True, size=full)
        if hasattr(os, "posix_fallocate"):
            try:
                os.posix_fallocate(segment.fileno(), 0, full)
            except OSError as exc:
                if exc.errno not in (errno.EINVAL, errno.EOPNOTSUPP):  # else: not supported
                    segment.close()
                    segment.unlink()
                    raise
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.ENOMEM):
            raise
        raise OSError(
            exc.errno,
            f"No room in shared memory for {what or f'a {size}-byte batch'} ({exc.strerror}). "
            "See `df -h /dev/shm`; in Docker, raise --shm-size.",
        ) from exc
    return segment


def unlink(name: str) -> None:
    """Remove segment `name` if it still exists."""
    try:
        _shm_unlink(name)
    except FileNotFoundError:
        pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def sweep_orphans() -> list[str]:
    """Remove the segments of nbtrain processes that are dead (a parent killed
    together with its workers, its whole process group); return their names.

    A segment's creator is the pid in its name (`new_prefix`).  Only names
    this user may remove go (/dev/shm is sticky).
    """
    try:
        names = os.listdir(_SHM_DIR)
    except OSError:
        return []
    dead: dict[int, bool] = {}
    removed = []
    for name in names:
        match = _ORPHAN.match(name)
        if match is None:
            continue
        pid = int(match.group(1))
        if pid not in dead:
            dead[pid] = not _alive(pid)
        if dead[pid]:
            try:
                _shm_unlink(name)
                removed.append(name)
            except (FileNotFoundError, PermissionError):
                pass
    return removed


def sweep(prefix: str) -> list[str]:
    """Remove every segment whose name starts with `prefix`; return their names."""
    try:
        names = [n for n in os.listdir(_SHM_DIR) if n.startswith(prefix)]
    except OSError:  # no /dev/shm (macOS): owners unlink the names they know
        return []
    for name in names:
        unlink(name)
    return names


class SlotWriter:
    """The worker's side: one segment per slot, replaced when too small.

    Args:
        prefix: name prefix of this worker's segments.
    """

    def __init__(self, prefix: str):
        self.prefix = prefix
        self._segments: dict[int, Segment] = {}
        self._created = 0

    def write(self, slot: int, obj: Any) -> tuple[str, int]:
        """Write `obj` into `slot`; return (segment name, header size)."""
        packed = Packed(obj)
        segment = self._segments.get(slot)
        if segment is None or segment.size < packed.nbytes:
            size = packed.nbytes
            if segment is not None:
                size = max(size, segment.size + segment.size // 4)  # headroom for growth
                self._drop(slot, unlink=True)
            self._created += 1
            segment = create(f"{self.prefix}{slot}_{self._created}", size)
            self._segments[slot] = segment
        packed.write_into(segment.buf)
        return segment.name, len(packed.header)

    def _drop(self, slot: int, unlink: bool) -> None:
        segment = self._segments.pop(slot)
        segment.close()
        if unlink:
            try:
                segment.unlink()
            except FileNotFoundError:
                pass

    def close(self, unlink: bool) -> None:
        """Unmap every segment; remove them too if `unlink` (when nobody will sweep)."""
        for slot in list(self._segments):
            self._drop(slot, unlink)


class SlotReader:
    """The consumer's side: segments attached by name, kept mapped while reused."""

    def __init__(self):
        self._segments: dict[Any, Segment] = {}
        self.names: set[str] = set()

    def read(self, key: Any, name: str, header_size: int) -> Any:
        """Copy the batch in segment `name` (slot `key`) out into fresh objects."""
        segment = self._segments.get(key)
        if segment is None or segment.name != name:
            if segment is not None:
                segment.close()  # replaced by its worker, which unlinked it
            segment = Segment(name)
            self._segments[key] = segment
            self.names.add(name)
        return unpack(segment.buf, header_size)

    def close(self) -> None:
        """Unmap every segment (their workers or a sweep remove them)."""
        for segment in self._segments.values():
            segment.close()
        self._segments.clear()


def write_blob(name: str, obj: Any, what: str | None = None) -> Segment:
    """Pickle `obj` by value (`nbtrain.data._processes.pickling.dumps`, the pickler the
    up-front check uses: cloudpickle, locks and not-yet-started generators
    rebuilt in the reader; protocol 5 with out-of-band buffers) into a new
    segment `name`; return the segment (close and unlink it later).  `what`
    names it in the error when /dev/shm is full.

    Layout: [8-byte header size][header: stream size, buffer offsets][stream][buffers].

    Raises:
        nbtrain.data._processes.pickling.Unpicklable: naming the part of `obj` that cannot be pickled.
    """
    from nbtrain.data._processes.pickling import dumps as dumps_by_value

    buffers: list[pickle.PickleBuffer] = []
    stream = dumps_by_value(obj, protocol=5, buffer_callback=buffers.append)
    raws = [b.raw() for b in buffers]
    layout, offset = [], _align(len(stream))
    for raw in raws:
        layout.append((offset, raw.nbytes))
        offset = _align(offset + raw.nbytes)
    header = pickle.dumps((len(stream), layout))
    base = _align(_SIZE.size + len(header))
    size = base + offset
    segment = create(name, size, what and f"{what} ({size} bytes)")
    buf = segment.buf
    buf[: _SIZE.size] = _SIZE.pack(len(header))
    buf[_SIZE.size : _SIZE.size + len(header)] = header
    buf[base : base + len(stream)] = stream
    for raw, (start, size) in zip(raws, layout):
        buf[base + start : base + start + size] = raw
    del buf
    return segment


def read_blob(name: str) -> Any:
    """Load an object written by `write_blob` (its buffers copied out)."""
    segment = Segment(name)
    try:
        buf = segment.buf
        (header_size,) = _SIZE.unpack(buf[: _SIZE.size])
        stream_size, layout = pickle.loads(buf[_SIZE.size : _SIZE.size + header_size])
        base = _align(_SIZE.size + header_size)
        stream = bytes(buf[base : base + stream_size])
        buffers = [bytearray(buf[base + start : base + start + size]) for start, size in layout]
        del buf
        return pickle.loads(stream, buffers=buffers)
    finally:
        segment.close()
