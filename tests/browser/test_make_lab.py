"""`make lab`, the README's main command, run the way a newcomer runs it.

- In this checkout, as whoever runs the tests (root in CI): `--allow-root` is passed
  exactly when the effective user is root.
- In a fresh clone owned by a throwaway ordinary user (made with `useradd`, so this
  case needs root: under `CI=true` it fails without it, elsewhere it skips), where
  `make lab` builds its own `.venv` from nothing.

Each case runs `make lab PORT=<free port> IP=127.0.0.1` in the background with no
display, so it must open no browser and print the URL with its token.  The test reads
that URL from make's output as a user would, waits for the server's API, opens the
quickstart notebook through it in Chromium, runs its first cells until the dashboard
of its first run (3 epochs) shows the finished run, then types Ctrl-C on make's
terminal (a pseudo-terminal: the terminal sends SIGINT to make and jupyter), answers
jupyter's "Shut down this Jupyter server (y/[n])?" with `y`, and checks that make,
jupyter and the kernels are all gone.

The user's JupyterLab state (settings, workspaces, runtime files) lives in a temporary
folder; the settings only render every cell and turn autosave off.  The clone is of
HEAD, plus the uncommitted changes to tracked files.  The throwaway user gets this
process's `PIP_*` environment (CI puts a folder of downloaded wheels in
`PIP_FIND_LINKS`, see .ci/run); otherwise its install downloads everything.
"""

from __future__ import annotations

import errno
import json
import os
import pty
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from browser_helpers import (
    LAB_OVERRIDES,
    Dashboard,
    Notebook,
    alive,
    command_line,
    descendants,
    free_port,
    reap,
)

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixture skips, or fails under NBTRAIN_REQUIRE_BROWSER=1
    expect = None

REPO = Path(__file__).resolve().parents[2]
START = 180_000  # ms: a kernel's start and TensorFlow's import on a loaded machine
INSTALL = 1200  # s: `make lab` creating .venv and installing everything first
URL = re.compile(r"http://127\.0\.0\.1:(\d+)/lab/tree/quickstart\.ipynb\?token=([0-9a-f]+)")
ANSI = re.compile(r"\x1b(\[[0-9;?]*[A-Za-z]|\([AB0-2])")
CONFIRM = "Shut down this Jupyter server (y/[n])?"
QUICK_RUN = re.compile(r"^run = nbtrain\.fit\(")  # the quickstart's first run, of 3 epochs
CLEAN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# What the test's own run (pytest under `make test`, a virtualenv, a display) would
# otherwise hand down to the `make lab` of a user typing it in a terminal.
NOT_INHERITED = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "VIRTUAL_ENV",
                 "PYTHONPATH", "PYTHONHOME", "DISPLAY", "WAYLAND_DISPLAY", "BROWSER",
                 "JUPYTER_PATH", "PYTEST_CURRENT_TEST", "PYTEST_ADDOPTS")


def user_state(home: Path) -> dict[str, str]:
    """Environment placing a user's JupyterLab and IPython state under `home`, with
    settings that render every cell and never autosave."""
    settings = home / "user-settings"
    for plugin, values in LAB_OVERRIDES.items():
        package, name = plugin.split(":")
        path = settings / package / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    return {
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_DATA_DIR": str(home / "data"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(settings),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
        "IPYTHONDIR": str(home / "ipython"),
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }


@dataclass
class Newcomer:
    """Who runs `make lab`, where, and with what environment."""

    checkout: Path
    env: dict[str, str]
    uid: int
    gid: int
    name: str


class MakeLab:
    """`make lab PORT=... IP=127.0.0.1` in the background, in a session of its own on a
    pseudo-terminal, its output (make's, jupyter's, the kernels') read by a thread into
    a log file."""

    def __init__(self, who: Newcomer, port: int, log_path: Path):
        self.who = who
        self.requested_port = port
        self.port = port  # where the server listens: the next free one if `port` is taken
        self.log_path = log_path
        self.lines: list[str] = []
        self.url: str | None = None
        self.url_after = 0.0  # s from the start until the URL was printed
        self.token: str | None = None
        self._terminal = -1
        self._url_printed = threading.Event()
        self._confirm_asked = threading.Event()
        self._reader: threading.Thread | None = None
        self.process: subprocess.Popen | None = None
        self.seen: dict[int, str] = {}  # every process seen below make

    def start(self) -> None:
        """Start `make lab` on a new pseudo-terminal, as its session's controlling
        terminal (so Ctrl-C typed there interrupts make and jupyter, as in a terminal)."""
        who = self.who
        credentials = {} if who.uid == os.geteuid() else {
            "user": who.uid, "group": who.gid, "extra_groups": []}
        self._started = time.monotonic()
        self._terminal, follower = pty.openpty()
        try:
            self.process = subprocess.Popen(
                ["setsid", "--ctty", "make", "lab", f"PORT={self.requested_port}", "IP=127.0.0.1"],
                cwd=who.checkout, env=who.env, stdin=follower, stdout=follower, stderr=follower,
                **credentials)
        finally:
            os.close(follower)
        self._reader = threading.Thread(target=self._read, name="make-lab-output")
        self._reader.start()

    def _read(self) -> None:
        pending = ""
        with open(self.log_path, "w") as log:
            while True:
                try:
                    chunk = os.read(self._terminal, 65536)
                except OSError as error:  # EIO: no process holds the terminal any more
                    if error.errno != errno.EIO:
                        raise
                    chunk = b""
                if not chunk:
                    break
                text = ANSI.sub("", chunk.decode(errors="replace")).replace("\r\n", "\n")
                log.write(text)
                log.flush()
                pending += text
                # the prompt has no newline, but a log line may follow it in the same read
                if CONFIRM in pending:
                    self._confirm_asked.set()
                *lines, pending = pending.split("\n")
                self.lines += [line + "\n" for line in lines]
                for line in lines:
                    match = URL.search(line)
                    if match and self.url is None:
                        self.url_after = time.monotonic() - self._started
                        self.url, self.token = match[0], match[2]
                        self.port = int(match[1])
                        self._url_printed.set()
        self.lines.append(pending)
        self._url_printed.set()  # end of output: everything holding the terminal has exited
        self._confirm_asked.set()

    def output(self, lines: int = 60) -> str:
        return "".join(self.lines[-lines:])

    def wait_url(self, timeout: float) -> str:
        """Wait until jupyter printed the notebook's URL with its token."""
        if not self._url_printed.wait(timeout):
            raise TimeoutError(f"make lab printed no URL within {timeout:.0f} s:\n{self.output()}")
        if self.url is None:
            raise AssertionError(f"make lab ended ({self.process.wait()}) before printing a URL:\n"
                                 + self.output())
        return self.url

    def api(self, path: str, timeout: float = 5) -> object:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/{path}",
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())

    def wait_api(self, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.api("api/status")
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise
                time.sleep(0.2)  # polling a port: there is no event to wait on

    def processes(self) -> dict[int, str]:
        """make and everything below it now (kernels run in sessions of their own)."""
        self.seen.update(descendants(self.process.pid))
        return self.seen

    def interrupt(self, timeout: float = 60) -> int:
        """Ctrl-C on the terminal, then `y` when jupyter asks to confirm; return make's
        exit status."""
        self.processes()
        os.write(self._terminal, b"\x03")
        if not self._confirm_asked.wait(timeout):
            raise TimeoutError(f"no shut-down confirmation asked after Ctrl-C:\n{self.output()}")
        os.write(self._terminal, b"y\r")
        return self.process.wait(timeout)

    def close(self) -> list[str]:
        """Make sure nothing is left (killing what is); describe what had to be killed."""
        left: list[str] = []
        if self.process is not None:
            if self.process.poll() is None:
                self.processes()
                left.append(f"{self.process.pid}: make lab")
                for sig in (signal.SIGTERM, signal.SIGKILL):
                    try:
                        os.killpg(self.process.pid, sig)
                    except OSError:
                        pass
                    try:
                        self.process.wait(15)
                        break
                    except subprocess.TimeoutExpired:
                        pass
            self.seen.pop(self.process.pid, None)
            left += reap(self.seen, 15)
        if self._reader is not None:
            self._reader.join(30)
        if self._terminal >= 0:
            os.close(self._terminal)
            self._terminal = -1
        return left


def processes_of(uid: int) -> dict[int, str]:
    """Every process running as `uid`: pid -> start time."""
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    found[int(entry)] = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1]
            except OSError:
                continue
    return {pid: stat.split()[19] for pid, stat in found.items()}


def full_command_line(pid: int) -> str:
    try:
        return Path("/proc", str(pid), "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return "?"


def jupyter_command(lab: MakeLab) -> str:
    """The command line of the jupyter server below make."""
    for pid in lab.processes():
        line = full_command_line(pid)
        if re.search(r"jupyter[- ]lab ", line):
            return line
    raise AssertionError(f"no jupyter lab process below make: {lab.processes()}")


def python_version(checkout: Path) -> str:
    """The Python version of the checkout's .venv (what its kernels run)."""
    return subprocess.run([str(checkout / ".venv" / "bin" / "python"), "-c",
                           "import platform; print(platform.python_version())"],
                          check=True, capture_output=True, text=True).stdout.strip()


def run_quickstart(lab: MakeLab, browser, artifacts: Path, name: str, checkout: Path) -> None:
    """Open the printed URL in Chromium, see the stored notebook as `make notebooks` left
    it, run the quickstart's first cells, and see the dashboard of the finished run."""
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(30_000)
    console: list[str] = []
    page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
    try:
        page.goto(lab.url)
        notebook = Notebook(page, None, "quickstart.ipynb")
        notebook.wait_kernel_idle(START)
        expect(page.locator(".jp-NotebookPanel-toolbar")).to_be_visible()
        cells = notebook.code_cells
        fit = notebook.cell_with(QUICK_RUN)
        # As stored: the run's static snapshot, without the live widget's plain-text
        # fallback above it (an untrusted notebook's widget output shows only that).
        expect(fit.locator(".nbtrain-snapshot")).to_contain_text("finished")
        assert "nbtrain dashboard" not in notebook.outputs_text(fit)
        # Opened unmodified: JupyterLab rewrites the kernel's name and Python version in
        # the metadata when they differ from the kernel's (it has shown the kernel's name
        # by then). The name is stored as JupyterLab writes it; the version is that of the
        # Python which ran `make notebooks`, so it can only hold where the kernel runs the same.
        expect(page.locator(".jp-NotebookPanel-toolbar .jp-KernelName")).to_have_text(
            "Python 3 (ipykernel)")
        stored = json.loads((checkout / "notebooks" / "quickstart.ipynb").read_text())
        if stored["metadata"]["language_info"]["version"] == python_version(checkout):
            expect(page.locator(".lm-TabBar-tab.jp-mod-dirty")).to_have_count(0)
        # The stored outputs go first, so that every prompt and the dashboard seen below
        # come from this kernel.
        notebook.menu("Edit", "editmenu:clear-all")
        expect(notebook.panel.locator(".jp-OutputArea-output")).to_have_count(0)
        count = cells.count()
        for index in range(count):
            cell = cells.nth(index)
            notebook.run_cell(cell, timeout=START)
            errors = cell.locator(".jp-OutputArea-output[data-mime-type*='error']")
            assert errors.count() == 0, f"cell {index}: {notebook.outputs_text(cell)}"
            if cell.locator(".jp-InputArea-editor").inner_text() == fit.locator(
                    ".jp-InputArea-editor").inner_text():
                break
        dashboard = Dashboard(fit)
        expect(dashboard.root).to_be_visible(timeout=START)
        expect(dashboard.epoch_counter).to_contain_text("/ 3")
        expect(dashboard.metrics.locator("table.nbtrain-table")).to_be_visible(timeout=START)
        dashboard.expect_state("finished", timeout=START)
        expect(dashboard.epoch_counter).to_contain_text("epoch 3 / 3")
        fit.screenshot(path=artifacts / f"{name}-dashboard.png")
        waited = notebook.run_cell(notebook.cell_with(re.compile(r"^history = run\.wait\(\)")),
                                   timeout=START)
        assert "('finished', [0, 1, 2])" in waited, waited
    except BaseException:
        page.screenshot(path=artifacts / f"{name}-failure.png")
        raise
    finally:
        (artifacts / f"{name}-console.log").write_text("\n".join(console) + "\n")
        context.close()


def check_make_lab(who: Newcomer, browser, artifacts: Path, name: str) -> MakeLab:
    """The whole scenario; returns the stopped `MakeLab` for further checks."""
    lab = MakeLab(who, free_port(), artifacts / f"{name}-make-lab.log")
    left: list[str] = []
    try:
        lab.start()
        url = lab.wait_url(INSTALL)
        assert f"?token={lab.token}" in url and len(lab.token) >= 32, url
        status = lab.wait_api()
        assert "started" in status, status
        command = jupyter_command(lab)
        assert "--no-browser" in command, command  # no display: no browser to open
        assert ("--allow-root" in command) == (who.uid == 0), command
        assert f"--ServerApp.port={lab.requested_port}" in command, command
        assert "--ServerApp.ip=127.0.0.1" in command, command
        output = lab.output(10_000)
        assert "Running as root" not in output, output
        assert "No display: open the URL printed below" in output, output

        run_quickstart(lab, browser, artifacts, name, who.checkout)

        kernels = [p for p in lab.processes() if full_command_line(p).startswith(
            f"{who.checkout}/.venv/bin/python -m ipykernel_launcher ")]
        assert kernels, f"no kernel of {who.checkout}/.venv ran: " + ", ".join(
            command_line(p) for p in lab.processes())
        processes = dict(lab.processes())
        status = lab.interrupt()
        assert status in (0, -signal.SIGINT), f"make lab exited with {status}:\n{lab.output()}"
        left = reap(processes, 30)
        assert not left, f"processes outlived make lab's Ctrl-C (killed): {left}"
        with pytest.raises(urllib.error.URLError):
            lab.api("api/status", timeout=2)
    finally:
        left = lab.close()
    assert not left, f"processes of make lab left at the end (killed): {left}"
    assert "Shutting down 1 kernel" in lab.output(10_000), lab.output()
    return lab


# -- who runs it ------------------------------------------------------------------------


def terminal_env(base: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in base.items() if k not in NOT_INHERITED}
    return env


@pytest.fixture
def this_checkout(tmp_path: Path) -> Newcomer:
    """Whoever runs the tests, in this checkout (whose .venv `make test` already built)."""
    user = pwd.getpwuid(os.geteuid())
    env = terminal_env(dict(os.environ))
    env.update(user_state(tmp_path / "jupyter-home"))
    return Newcomer(REPO, env, user.pw_uid, user.pw_gid, user.pw_name)


@pytest.fixture
def throwaway_user() -> Iterator[Newcomer]:
    """A new ordinary user with a fresh clone of this repository in its home;
    deleted at the end, with its home, after checking it runs no process."""
    missing = ("useradd" if shutil.which("useradd") is None
               else "root" if os.geteuid() != 0 else None)
    if missing:
        reason = ("the make lab test as an ordinary user needs root (to create a throwaway "
                  "user with useradd)" if missing == "root" else "useradd is not installed")
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI runs as root and requires this test", pytrace=False)
        pytest.skip(f"{reason}; run `sudo make test`, or the CI, to cover it")
    name = f"nbtrain-lab-{secrets.token_hex(3)}"
    parent = Path(tempfile.mkdtemp(prefix=f"{name}-"))
    parent.chmod(0o755)
    home = parent / "home"
    subprocess.run(["useradd", "--create-home", "--home-dir", str(home), "--shell", "/bin/sh",
                    "--user-group", name], check=True, capture_output=True)
    entry = pwd.getpwnam(name)
    try:
        checkout = home / "nbtrain"
        subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(REPO), str(checkout)],
                       check=True, capture_output=True)
        diff = subprocess.run(["git", "-C", str(REPO), "diff", "HEAD", "--binary"], check=True,
                              capture_output=True).stdout
        if diff:
            subprocess.run(["git", "-C", str(checkout), "apply", "--binary", "-"], input=diff,
                           check=True, capture_output=True)
        env = {
            "HOME": str(home), "USER": name, "LOGNAME": name, "SHELL": "/bin/sh",
            "PATH": CLEAN_PATH, "LANG": os.environ.get("LANG", "C.UTF-8"),
            **{k: v for k, v in os.environ.items()
               if k.startswith("PIP_") and k != "PIP_CACHE_DIR" or k == "CI"},
            **user_state(home / "jupyter-home"),
        }
        subprocess.run(["chown", "-R", f"{entry.pw_uid}:{entry.pw_gid}", str(home)], check=True)
        yield Newcomer(checkout, env, entry.pw_uid, entry.pw_gid, name)
        left = processes_of(entry.pw_uid)
        assert not left, f"processes of {name} left: " + ", ".join(command_line(p) for p in left)
    finally:
        for pid in alive(processes_of(entry.pw_uid)):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        subprocess.run(["userdel", "--remove", name], capture_output=True)
        shutil.rmtree(parent, ignore_errors=True)


# -- the tests --------------------------------------------------------------------------


@pytest.mark.timeout(INSTALL + 600)
def test_make_lab_in_this_checkout(this_checkout: Newcomer, browser, artifacts: Path):
    notebook = REPO / "notebooks" / "quickstart.ipynb"
    before = notebook.read_bytes()
    check_make_lab(this_checkout, browser, artifacts, "make-lab-checkout")
    assert notebook.read_bytes() == before, "make lab's session changed notebooks/quickstart.ipynb"


@pytest.mark.timeout(INSTALL + 600)
def test_make_lab_fresh_clone_as_ordinary_user(throwaway_user: Newcomer, browser, artifacts: Path):
    checkout = throwaway_user.checkout
    assert not (checkout / ".venv").exists()
    started = time.monotonic()
    lab = check_make_lab(throwaway_user, browser, artifacts, "make-lab-user")
    print(f"make lab as {throwaway_user.name} from a fresh clone: URL after "
          f"{lab.url_after:.0f} s (the install), everything {time.monotonic() - started:.0f} s")
    venv = checkout / ".venv"
    assert (venv / ".installed").exists(), lab.output()
    assert (venv / "pyvenv.cfg").stat().st_uid == throwaway_user.uid
