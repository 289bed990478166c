"""`nbtrain demo`, the terminal smoke test of the main job, run as a user runs it: the
`nbtrain` command of the environment, in a session of its own (as a shell starts
it), with no display, its output on a terminal (a pseudo-terminal: the progress bar
redraws its line) or on a pipe (`nbtrain demo | tee log`: one line an epoch); then its
exit status, nbtrain's state lines and Keras-style output, and that no process it
started (thread or process workers) outlives it; and a Ctrl-C mid-run, which stops
the run and keeps its history."""

from __future__ import annotations

import errno
import os
import pty
import re
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

DISPLAY_VARIABLES = ("DISPLAY", "WAYLAND_DISPLAY", "PYTEST_CURRENT_TEST", "PYTEST_ADDOPTS")


def nbtrain_command() -> str:
    """The `nbtrain` console script installed beside this Python (`make setup`'s .venv)."""
    script = Path(sys.executable).with_name("nbtrain")
    if script.exists():
        return str(script)
    found = shutil.which("nbtrain")
    assert found, f"no `nbtrain` command beside {sys.executable} or on the PATH: install the package"
    return found


def in_session(sid: int) -> dict[int, str]:
    """Every process of session `sid` (a descendant that was orphaned too): pid -> command."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path("/proc", entry, "stat").read_text()
            fields = stat[stat.rindex(")") + 2:].split()
            if int(fields[3]) == sid and fields[0] != "Z":
                found[int(entry)] = Path("/proc", entry, "cmdline").read_bytes().replace(
                    b"\0", b" ").decode(errors="replace")[:160]
        except (OSError, ValueError):
            continue
    return found


class TerminalReader(threading.Thread):
    """Reads everything written to a pseudo-terminal until its last writer closed
    it; `seen(text)` is set once `text` has appeared."""

    def __init__(self, fd: int, watch: str | None = None):
        super().__init__(name="demo-terminal")
        self.fd, self.watch = fd, watch
        self.chunks: list[bytes] = []
        self.seen = threading.Event()

    def run(self) -> None:
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except OSError as error:  # Linux: EIO once no process holds the terminal open
                if error.errno != errno.EIO:
                    raise
                break
            if not chunk:
                break
            self.chunks.append(chunk)
            if self.watch and self.watch in self.text():
                self.seen.set()
        self.seen.set()  # the end: whoever waits for the text looks at what came

    def text(self) -> str:
        return b"".join(self.chunks).decode(errors="replace").replace("\r\n", "\n")


def run_demo(*args: str, terminal: bool, timeout: float = 240, interrupt_after: str | None = None
             ) -> tuple[subprocess.CompletedProcess, dict[int, str]]:
    """Run `nbtrain demo ARGS`; return its result (stdout, stderr: the terminal's text
    when `terminal`) and the processes of its session still alive after it exited.
    With `interrupt_after`, once that text is on the terminal, Ctrl-C: SIGINT to the
    demo's process group, as a terminal sends it to its foreground job."""
    env = {k: v for k, v in os.environ.items() if k not in DISPLAY_VARIABLES}
    env.update(TF_CPP_MIN_LOG_LEVEL="3", TERM="xterm", COLUMNS="100")
    command = [nbtrain_command(), "demo", *args]
    if terminal:
        leader, follower = pty.openpty()
        process = subprocess.Popen(command, env=env, stdin=follower, stdout=follower,
                                   stderr=follower, start_new_session=True)
        os.close(follower)
    else:
        assert interrupt_after is None
        process = subprocess.Popen(command, env=env, text=True, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   start_new_session=True)
    try:
        if terminal:
            watchdog = threading.Timer(timeout, os.killpg, (process.pid, signal.SIGKILL))
            watchdog.start()
            reader = TerminalReader(leader, interrupt_after)
            reader.start()
            try:
                if interrupt_after:
                    reader.seen.wait(timeout)
                    if process.poll() is None:
                        os.killpg(process.pid, signal.SIGINT)
                reader.join(timeout)
                stdout, stderr = reader.text(), ""
            finally:
                watchdog.cancel()
                watchdog.join()
                os.close(leader)
            process.wait(timeout)
        else:
            stdout, stderr = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    left = in_session(process.pid)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr), left


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process table in /proc")
@pytest.mark.parametrize("args, terminal", [
    ((), True),
    (("--epochs", "2", "--workers", "2", "--processes"), False),
], ids=["threads-on-a-terminal", "processes-on-a-pipe"])
def test_nbtrain_demo(args, terminal):
    result, left = run_demo(*args, terminal=terminal)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    epochs = int(args[1]) if args else 3
    for epoch in range(1, epochs + 1):
        assert f"Epoch {epoch}/{epochs}" in result.stdout, output[-3000:]
    # The last state of each epoch's bar (Keras's Progbar: colours on a terminal, and
    # redrawn in place there with "\r" / "\b").
    text = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout)
    chunks = re.split(r"Epoch \d+/\d+", text)[1:]
    ends = [chunk[chunk.rfind("128/128"):].splitlines()[0] for chunk in chunks if "128/128" in chunk]
    assert len(ends) == epochs, result.stdout[-3000:]
    for end in ends:
        for metric in ("loss", "accuracy", "val_loss", "val_accuracy"):
            assert re.search(rf" - {metric}: \d\.\d+", end), end
    if terminal:  # the bar moved during the epoch: redrawn before its last state
        redraws = text.count("\r") + text.count("\b")
        assert redraws > epochs, result.stdout[-3000:]
    # nbtrain's own text view: the start, with what Ctrl-C does, and the end; no
    # TensorFlow start-up lines (nbtrain.tf_startup)
    assert re.search(rf"^nbtrain: running at epoch 1/{epochs}\b.* - Ctrl-C stops it; the history "
                     r"is kept$", text, re.MULTILINE), text[-3000:]
    assert re.search(rf"^nbtrain: finished at epoch {epochs}/{epochs}$", text, re.MULTILINE), (
        text[-3000:])
    assert "absl" not in output and not re.search(r"^[IWE]\d{4} ", output, re.MULTILINE), output
    final = re.search(rf"^final accuracy (\d\.\d{{3}}) after {epochs} epochs$", result.stdout,
                      re.MULTILINE)
    assert final and float(final[1]) > 0.6, result.stdout[-3000:]
    assert "Traceback" not in output, output[-3000:]
    assert not left, f"processes outlived `nbtrain demo` (killed): {left}"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process table in /proc")
def test_ctrl_c_stops_the_demo_and_keeps_the_history():
    result, left = run_demo("--epochs", "50", terminal=True, interrupt_after="Epoch 3/50")
    text = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout)
    assert result.returncode == 130, text[-3000:]
    assert re.search(r"^nbtrain: running at epoch 1/50\b.* - Ctrl-C stops it; the history is kept$",
                     text, re.MULTILINE), text[-3000:]
    stopped = re.search(r"^nbtrain: stopped at epoch (\d+)/50, batch \d+/128$", text, re.MULTILINE)
    assert stopped and int(stopped[1]) >= 3, text[-3000:]
    kept = re.search(r"^nbtrain demo: interrupted; the history keeps (\d+) complete epochs?$", text,
                     re.MULTILINE)
    assert kept and int(kept[1]) >= 2, text[-3000:]  # "Epoch 3/50" came after two epochs
    assert "final accuracy" not in text and "Traceback" not in text, text[-3000:]
    assert not left, f"processes outlived `nbtrain demo` (killed): {left}"
