"""Start worker processes with the 'spawn' method: without re-running `__main__`,
in a session of their own, with their output on pipes, no resource tracker.

A spawned child normally imports the parent's main module again (as
`__mp_main__`) before it unpickles its target.  nbtrain ships everything a
worker needs by value (cloudpickle), so that import buys nothing and costs a
lot: a script's top-level code (often `import tensorflow`) would run again in
every worker, and a script without an `if __name__ == "__main__":` guard would
fail.  The launcher below is the stdlib's POSIX spawn launcher
(`popen_spawn_posix.Popen._launch`: same preparation data minus the main
module, same pickled process object, same `spawn_main` entry point) with three
differences:

- The child starts in a new session (`setsid`), so a signal to the parent's
  process group (a terminal's Ctrl-C, Jupyter's `restart_kernel(now=True)`,
  which SIGKILLs the kernel's whole group) does not kill it: the worker sees
  its parent die and removes the pool's shared memory itself.
- Its stdin is /dev/null and its stdout and stderr are the pipes the caller
  gives (the pool relays them), never the parent's: in Jupyter those are the
  kernel's output pipes, which a graceful kernel shutdown waits on until every
  process holding them has exited.
- No resource tracker is started or passed on (see `nbtrain.data._processes.shm`).

'fork' is never used: forking a parent that has TensorFlow's threads running
can deadlock the child.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import subprocess
from typing import Any

_CTX = multiprocessing.get_context("spawn")
_MAIN_KEYS = ("init_main_from_name", "init_main_from_path")


def _make_popen() -> type | None:
    """A subclass of the stdlib's POSIX spawn Popen with nbtrain's launcher
    (None where it does not exist: Windows)."""
    try:
        from multiprocessing import context, popen_spawn_posix, reduction, spawn, util
    except ImportError:
        return None

    class WorkerPopen(popen_spawn_posix.Popen):
        def _launch(self, process_obj: Any) -> None:
            prep_data = spawn.get_preparation_data(process_obj._name)
            for key in _MAIN_KEYS:
                prep_data.pop(key, None)
            fp = io.BytesIO()
            context.set_spawning_popen(self)
            try:
                reduction.dump(prep_data, fp)
                reduction.dump(process_obj, fp)
            finally:
                context.set_spawning_popen(None)
            stdout, stderr = getattr(process_obj, "stdio", (None, None))
            parent_r = child_w = child_r = parent_w = None
            try:
                parent_r, child_w = os.pipe()
                child_r, parent_w = os.pipe()
                cmd = spawn.get_command_line(pipe_handle=child_r)
                self._fds.extend([child_r, child_w])
                self._child = subprocess.Popen(
                    cmd, executable=spawn.get_executable(), stdin=subprocess.DEVNULL,
                    stdout=stdout, stderr=stderr, pass_fds=sorted(set(self._fds)),
                    close_fds=True, start_new_session=True,
                )
                self.pid = self._child.pid
                self.sentinel = parent_r
                with open(parent_w, "wb", closefd=False) as f:
                    f.write(fp.getbuffer())
            finally:
                fds_to_close = [fd for fd in (parent_r, parent_w) if fd is not None]
                self.finalizer = util.Finalize(self, util.close_fds, fds_to_close)
                for fd in (child_r, child_w):
                    if fd is not None:
                        os.close(fd)

        def poll(self, flag: int = os.WNOHANG) -> int | None:
            # The child is a subprocess.Popen's: reap it through that object only,
            # so the two never race for its exit status.
            if self.returncode is None:
                child = getattr(self, "_child", None)
                if child is None:
                    return None
                self.returncode = child.poll() if flag == os.WNOHANG else child.wait()
            return self.returncode

    return WorkerPopen


_POPEN = _make_popen()


class SpawnProcess(_CTX.Process):
    """A 'spawn' process that does not import the parent's `__main__` module.

    Set `stdio = (stdout_fd, stderr_fd)` before `start()` to give its output
    pipes (otherwise it inherits the parent's).
    """

    stdio: tuple[int | None, int | None] = (None, None)

    @staticmethod
    def _Popen(process_obj: Any):  # noqa: N802 - the stdlib's name
        if _POPEN is None:
            return _CTX.Process._Popen(process_obj)
        return _POPEN(process_obj)


def pipe() -> tuple[Any, Any]:
    """A one-way pipe `(reader, writer)` from the spawn context."""
    return _CTX.Pipe(duplex=False)
