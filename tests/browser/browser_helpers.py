"""What the browser tests drive: a JupyterLab server of their own, the
processes it and Chromium start, and page objects for a notebook and the
nbtrain dashboard in it.

Nothing here sleeps to synchronise: every wait is for a condition, with a timeout.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# -- processes --------------------------------------------------------------------------


def _process_table() -> dict[int, tuple[int, str, str]]:
    """pid -> (parent pid, start time, state), read from /proc (empty elsewhere)."""
    table = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return table
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            stat = Path("/proc", entry, "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # the name may hold spaces and parens
        table[int(entry)] = (int(fields[1]), fields[19], fields[0])
    return table


def children(pid: int) -> dict[int, str]:
    """The direct children of `pid`: pid -> start time (which tells a reused pid apart)."""
    return {p: start for p, (ppid, start, _) in _process_table().items() if ppid == pid}


def descendants(*pids: int) -> dict[int, str]:
    """`pids` and every process below them: pid -> start time."""
    table = _process_table()
    found = {p: table[p][1] for p in pids if p in table}
    pending = list(found)
    while pending:
        parent = pending.pop()
        for p, (ppid, start, _) in table.items():
            if ppid == parent and p not in found:
                found[p] = start
                pending.append(p)
    return found


def alive(processes: dict[int, str]) -> dict[int, str]:
    """The processes of `processes` that still run (zombies count as gone)."""
    table = _process_table()
    return {p: s for p, s in processes.items()
            if p in table and table[p][1] == s and table[p][2] != "Z"}


def command_line(pid: int) -> str:
    try:
        raw = Path("/proc", str(pid), "cmdline").read_bytes()
    except OSError:
        return "?"
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()[:160]


def reap(processes: dict[int, str], timeout: float) -> list[str]:
    """Wait up to `timeout` s for `processes` to end; kill the survivors and
    describe them (an empty list: none was left)."""
    deadline = time.monotonic() + timeout
    left = alive(processes)
    while left and time.monotonic() < deadline:
        time.sleep(0.1)  # polling the process table: there is no event to wait on
        left = alive(processes)
    described = [f"{pid}: {command_line(pid)}" for pid in left]
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    return described


# -- the JupyterLab server --------------------------------------------------------------

LAB_OVERRIDES = {
    # Every cell in the DOM (JupyterLab 4 renders cells lazily by default).
    "@jupyterlab/notebook-extension:tracker": {"windowingMode": "none"},
    # No news or update checks (and no pop-up asking about them).
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false",
                                                    "checkForUpdates": False},
    # The file on disk changes only when a test saves it.
    "@jupyterlab/docmanager-extension:plugin": {"autosave": False},
    "@jupyterlab/extensionmanager-extension:plugin": {"enabled": False},
}


class _Exited(RuntimeError):
    """The server process ended before it answered."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class JupyterLab:
    """`jupyter lab` from this environment, on a free loopback port with a random
    token, serving `root/notebooks`, with its configuration, settings,
    workspaces and runtime files all under `root`.

    Args:
        root: an empty temporary directory the server owns.
        notebooks: files to copy into the served directory.
    """

    def __init__(self, root: Path, notebooks: list[Path]):
        self.root = root
        self.notebooks = root / "notebooks"
        self.notebooks.mkdir()
        for path in notebooks:
            shutil.copy(path, self.notebooks / path.name)
        settings = root / "app-settings"
        settings.mkdir()
        (settings / "overrides.json").write_text(json.dumps(LAB_OVERRIDES, indent=1))
        self.port = free_port()
        self.token = secrets.token_hex(24)
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = root / "jupyter-server.log"
        self.process: subprocess.Popen | None = None
        self._workspaces = 0

    module = "jupyterlab"
    """The front-end application the server runs (`python -m <module>`)."""

    def extra_arguments(self) -> list[str]:
        """Command-line options a subclass adds for its application."""
        return []

    def start(self, timeout: float = 90.0, attempts: int = 3) -> None:
        """Start the server and wait until it answers (on another free port if it
        exits at once, e.g. because another process took the port meanwhile)."""
        for attempt in range(attempts):
            try:
                return self._start(timeout)
            except _Exited:
                if attempt == attempts - 1:
                    raise
                self.port = free_port()
                self.base = f"http://127.0.0.1:{self.port}"

    def _start(self, timeout: float) -> None:
        root = self.root
        env = dict(os.environ)
        env.update(
            TF_CPP_MIN_LOG_LEVEL="3",
            JUPYTER_CONFIG_DIR=str(root / "config"),
            JUPYTER_DATA_DIR=str(root / "data"),
            JUPYTER_RUNTIME_DIR=str(root / "runtime"),
            JUPYTER_PLATFORM_DIRS="1",
            JUPYTERLAB_SETTINGS_DIR=str(root / "user-settings"),
            JUPYTERLAB_WORKSPACES_DIR=str(root / "workspaces"),
            IPYTHONDIR=str(root / "ipython"),
        )
        env.pop("JUPYTER_PATH", None)
        command = [
            sys.executable, "-m", self.module,
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.notebooks}",
            "--ServerApp.allow_root=True",
            f"--LabApp.app_settings_dir={root / 'app-settings'}",
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.extension_manager=readonly",
            # If this process dies without its teardown, the server and kernels go by themselves.
            "--MappingKernelManager.cull_idle_timeout=900",
            "--MappingKernelManager.cull_interval=60",
            "--MappingKernelManager.cull_connected=True",
            "--ServerApp.shutdown_no_activity_timeout=1200",
            *self.extra_arguments(),
        ]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL,
                                            stdout=log, stderr=subprocess.STDOUT, cwd=root,
                                            start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise _Exited(f"jupyter lab exited with {self.process.returncode}:\n"
                              + self.log_tail())
            try:
                self.api("GET", "api/status", timeout=2)
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"jupyter lab did not answer within {timeout} s:\n"
                                       + self.log_tail()) from None
                time.sleep(0.2)  # polling a port that is not open yet

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def api(self, method: str, path: str, timeout: float = 10) -> Any:
        request = urllib.request.Request(f"{self.base}/{path}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        if method == "POST":
            request.data = b""
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
        return json.loads(body) if body else None

    def notebook_url(self, name: str) -> str:
        """The URL that opens `name` in a workspace of its own (nothing restored)."""
        self._workspaces += 1
        return (f"{self.base}/lab/workspaces/test{self._workspaces}/tree/{name}"
                f"?reset&token={self.token}")

    def kernel_processes(self) -> dict[int, str]:
        """Every process below the server (its kernels and what they started)."""
        if self.process is None:
            return {}
        found = descendants(self.process.pid)
        found.pop(self.process.pid, None)
        return found

    def shutdown_kernels(self, timeout: float = 30.0) -> list[str]:
        """Shut every kernel down through the REST API; return the processes below
        the server that did not end (killed)."""
        processes = self.kernel_processes()
        try:
            for session in self.api("GET", "api/sessions"):
                self.api("DELETE", f"api/sessions/{session['id']}", timeout=timeout)
            for kernel in self.api("GET", "api/kernels"):
                self.api("DELETE", f"api/kernels/{kernel['id']}", timeout=timeout)
        except OSError:
            pass  # a server that does not answer: its processes are reaped below
        return reap(processes, timeout)

    def stop(self, timeout: float = 30.0) -> list[str]:
        """Shut the server (and every kernel) down; return the processes that had
        to be killed."""
        process = self.process
        if process is None:
            return []
        processes = descendants(process.pid)
        try:
            self.api("POST", "api/shutdown")
        except OSError:
            pass
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        processes.pop(process.pid, None)
        return reap(processes, 10)


# -- page objects -----------------------------------------------------------------------

# One JavaScript function reading the dashboard's position (1-based epoch, batch) as
# one number, so a wait can compare positions without racing two reads.
_POSITION_JS = """(root) => {
    const epoch = /epoch (\\d+)/.exec(root.querySelector('.nbtrain-epoch-counter').textContent);
    const batch = /batch (\\d+)/.exec(root.querySelector('.nbtrain-batch-counter').textContent);
    return epoch && batch ? Number(epoch[1]) * 100000 + Number(batch[1]) : -1;
}"""


# Records the dashboard's height at every change of it or of the state badge, with the
# state then: [[height px, state, ms], ...] (a ResizeObserver and a MutationObserver).
_HEIGHTS_JS = """(root) => {
    const badge = root.querySelector('.nbtrain-state');
    const log = [];
    const read = () => {
        const state = (/nbtrain-state-(\\w+)/.exec(badge.className) || [])[1] || '';
        const height = Math.round(root.getBoundingClientRect().height);
        const last = log[log.length - 1];
        if (!last || last[0] !== height || last[1] !== state) {
            const parts = [...root.children].map((child) => {
                const name = [...child.classList].find((c) => c.startsWith('nbtrain-'));
                return `${name || 'box'}:${Math.round(child.getBoundingClientRect().height)}`;
            });
            log.push([height, state, performance.now(), parts.join(' ')]);
        }
    };
    new ResizeObserver(read).observe(root);
    new MutationObserver(read).observe(badge, {attributes: true, attributeFilter: ['class']});
    read();
    return log;
}"""

# Every <select> of the plot controls: [selectedIndex, the selected option's text].
_SELECTS_JS = """(root) => [...root.querySelectorAll('.nbtrain-plot-controls select')].map(
    (select) => [select.selectedIndex,
                 select.selectedIndex < 0 ? '' : select.options[select.selectedIndex].text])"""

ENDED = ("stopped", "finished", "failed")


@dataclass(frozen=True)
class Position:
    """Where a dashboard says the run is: 1-based epoch, batches done of `steps`."""

    epoch: int
    epochs: int | None
    batch: int
    steps: int | None

    @property
    def key(self) -> int:
        return self.epoch * 100000 + self.batch


@dataclass(frozen=True)
class Status:
    """What the notebooks' `status(run)` printed."""

    state: str
    epoch: int
    batch: int
    epochs: int
    history: int
    exception: str

    PATTERN = re.compile(r"run state=(\w+) epoch=(\d+) batch=(\d+) epochs=(\d+) history=(\d+) "
                         r"exception=(\w+)")

    @classmethod
    def parse(cls, text: str) -> Status:
        match = cls.PATTERN.search(text)
        assert match, f"no status line in {text!r}"
        state, epoch, batch, epochs, history, exception = match.groups()
        return cls(state, int(epoch), int(batch), int(epochs), int(history), exception)


class Notebook:
    """A notebook open in JupyterLab, driven through its UI."""

    def __init__(self, page: Any, lab: JupyterLab, name: str):
        self.page = page
        self.lab = lab
        self.name = name
        self.panel = page.locator(".jp-NotebookPanel")
        self.cells = self.panel.locator(".jp-Notebook .jp-Cell")
        self.code_cells = self.panel.locator(".jp-Notebook .jp-CodeCell")
        self.indicator = self.panel.locator(".jp-Notebook-ExecutionIndicator")

    def open(self, timeout: float = 60_000) -> Notebook:
        """Open the notebook and wait for its cells and an idle kernel."""
        from playwright.sync_api import expect

        self.page.goto(self.lab.notebook_url(self.name))
        self.wait_kernel_idle(timeout)
        expect(self.code_cells.first).to_be_visible(timeout=timeout)
        return self

    def wait_kernel_idle(self, timeout: float = 60_000) -> None:
        from playwright.sync_api import expect

        expect(self.indicator).to_have_attribute("data-status", "idle", timeout=timeout)
        expect(self.page.locator("#jp-main-statusbar")).to_contain_text(
            re.compile(r"\| Idle"), timeout=timeout)

    def menu(self, menu: str, command: str) -> None:
        """Click a menu of the menu bar, then its item for `command`."""
        bar = self.page.locator(".lm-MenuBar-item", has_text=re.compile(rf"^{menu}$"))
        bar.click()
        self.page.locator(f".lm-Menu-item[data-command='{command}']").click()

    def run_all(self) -> None:
        """Run > Run All Cells, once more if no cell was queued within 10 s (Notebook 7
        once left every cell unrun in a fresh clone's run: the command did not take).
        The page marks every cell queued (`[*]`) as soon as the command takes, so the
        second click never runs a cell twice."""
        from playwright.sync_api import expect

        queued = self.panel.locator(".jp-CodeCell .jp-InputPrompt",
                                    has_text=re.compile(r"\[(\*|\d+)\]"))
        for attempt in range(2):
            self.menu("Run", "runmenu:run-all")
            try:
                expect(queued.first).to_be_visible(timeout=10_000)
                return
            except AssertionError:
                if attempt:
                    raise

    def save(self) -> None:
        self.menu("File", "docmanager:save")

    def wait_all_executed(self, timeout: float = 120_000) -> None:
        """Wait until every code cell has an execution count and the kernel is idle."""
        self.page.wait_for_function(
            """(panel) => {
                const prompts = [...panel.querySelectorAll('.jp-CodeCell .jp-InputPrompt')];
                const status = panel.querySelector('.jp-Notebook-ExecutionIndicator');
                return prompts.length > 0
                    && prompts.every((p) => /^\\[\\d+\\]:$/.test(p.textContent.trim()))
                    && status && status.dataset.status === 'idle';
            }""", arg=self.panel.element_handle(), timeout=timeout)

    def cell_with(self, text: str | re.Pattern) -> Any:
        """The code cell whose source contains `text` (exactly one)."""
        from playwright.sync_api import expect

        cell = self.code_cells.filter(
            has=self.page.locator(".jp-InputArea-editor", has_text=text))
        expect(cell).to_have_count(1)
        return cell

    def run_cell(self, cell: Any, timeout: float = 60_000) -> str:
        """Run one cell from its editor (Ctrl+Enter) and return its output text."""
        prompt = cell.locator(".jp-InputPrompt")
        before = prompt.text_content().strip()
        cell.locator(".jp-InputArea-editor").click()
        self.page.keyboard.press("Control+Enter")
        self.page.wait_for_function(
            """([prompt, before]) => {
                const text = prompt.textContent.trim();
                return /^\\[\\d+\\]:$/.test(text) && text !== before;
            }""", arg=[prompt.element_handle(), before], timeout=timeout)
        return self.outputs_text(cell)

    def outputs_text(self, cell: Any) -> str:
        return "\n".join(cell.locator(".jp-OutputArea-output").all_inner_texts())


class Dashboard:
    """The nbtrain dashboard in a cell's output, found by its CSS classes."""

    def __init__(self, cell: Any):
        self.cell = cell
        self.page = cell.page
        self.root = cell.locator(".nbtrain-dashboard")
        self.header = self.root.locator(".nbtrain-header")
        self.state = self.root.locator(".nbtrain-state")
        self.epoch_bar = self.root.locator(".nbtrain-epoch-bar")
        self.batch_bar = self.root.locator(".nbtrain-batch-bar")
        self.epoch_counter = self.root.locator(".nbtrain-epoch-counter")
        self.batch_counter = self.root.locator(".nbtrain-batch-counter")
        self.metrics = self.root.locator(".nbtrain-metrics")
        self.plot = self.root.locator("img.nbtrain-plot")
        self.messages = self.root.locator(".nbtrain-messages")
        self.plot_controls = self.root.locator(".nbtrain-plot-controls")
        self.metric_toggles = self.root.locator(".nbtrain-plot-metric")
        self.steering = self.root.locator(".nbtrain-steering")
        self.lr_current = self.root.locator(".nbtrain-lr-current")
        self.lr_field = self.root.locator(".nbtrain-lr-value input")
        self.lr_apply = self.root.locator("button.nbtrain-lr-apply")
        self.lr_note = self.root.locator(".nbtrain-lr-note")
        self.pause = self.root.locator("button.nbtrain-pause")
        self.stop = self.root.locator("button.nbtrain-stop")
        self.continue_epochs = self.root.locator(".nbtrain-continue-epochs input")
        self.continue_ = self.root.locator("button.nbtrain-continue")
        # The static snapshot: ordinary outputs of the same cell, after the widget.
        self.snapshot = cell.locator(".nbtrain-snapshot")
        self.snapshot_image = cell.locator(".jp-RenderedImage img")
        self.output_area = cell.locator(".jp-Cell-outputWrapper")

    def expect_state(self, state: str, timeout: float = 30_000) -> None:
        """Wait for the state badge's class `nbtrain-state-<state>`."""
        from playwright.sync_api import expect

        expect(self.state).to_have_class(re.compile(rf"(^|\s)nbtrain-state-{state}(\s|$)"),
                                         timeout=timeout)

    def position(self) -> Position:
        epoch = re.search(r"epoch (\d+) / (\d+|\?)", self.epoch_counter.text_content())
        batch = re.search(r"batch (\d+)/(\d+|\?)", self.batch_counter.text_content())
        assert epoch and batch, "the counters show no position"
        number = lambda text: None if text == "?" else int(text)  # noqa: E731
        return Position(int(epoch[1]), number(epoch[2]), int(batch[1]), number(batch[2]))

    def wait_advance(self, since: Position, timeout: float = 30_000) -> Position:
        """Wait until the counters show a later position than `since`."""
        self.page.wait_for_function(
            f"([root, key]) => ({_POSITION_JS})(root) > key",
            arg=[self.root.element_handle(), since.key], timeout=timeout)
        return self.position()

    def wait_at(self, keys: list[int], timeout: float = 10_000) -> Position:
        """Wait until the counters show one of the positions `keys` (`Position.key`)."""
        self.page.wait_for_function(
            f"([root, keys]) => keys.includes(({_POSITION_JS})(root))",
            arg=[self.root.element_handle(), keys], timeout=timeout)
        return self.position()

    def plot_source(self) -> str:
        return self.plot.get_attribute("src") or ""

    def wait_new_plot(self, since: str, timeout: float = 30_000) -> None:
        """Wait until the live plot shows another image than `since` (its `src`)."""
        self.page.wait_for_function(
            "([img, since]) => img.complete && img.naturalWidth > 0 && img.src !== since",
            arg=[self.plot.element_handle(), since], timeout=timeout)

    def watch_still(self, seconds: float) -> tuple[set[int], float]:
        """Sample the position every 50 ms for `seconds` (a measured interval, in
        the page); return the positions seen and the interval's length in s."""
        seen, elapsed = self.page.evaluate(
            f"""async ([root, ms]) => {{
                const read = {_POSITION_JS};
                const seen = new Set([read(root)]);
                const start = performance.now();
                while (performance.now() - start < ms) {{
                    await new Promise((done) => setTimeout(done, 50));
                    seen.add(read(root));
                }}
                return [[...seen], (performance.now() - start) / 1000];
            }}""", [self.root.element_handle(), seconds * 1000])
        return set(seen), elapsed

    def watch_height(self) -> Any:
        """Start recording the dashboard's height with the state at each change (a
        handle for `heights`)."""
        return self.page.evaluate_handle(_HEIGHTS_JS, self.root.element_handle())

    @staticmethod
    def heights(watch: Any) -> list[tuple[int, str]]:
        """What `watch_height` recorded so far: (height px, state) at each change."""
        return [(int(h), state) for h, state, *_ in watch.json_value()]

    @staticmethod
    def height_log(watch: Any) -> str:
        """What `watch_height` recorded, each part's height too (for a failure's message)."""
        return "\n".join(f"{h} {state} {ms / 1000:.2f}s {parts}"
                         for h, state, ms, parts in watch.json_value())

    @staticmethod
    def heights_while_training(records: list[tuple[int, str]]) -> list[set[int]]:
        """The heights seen in each stretch of the run between two ends (a stretch
        ends at a stopped, finished or failed state): one height each if nothing jumped."""
        stretches: list[set[int]] = [set()]
        for height, state in records:
            if state in ENDED:
                if stretches[-1]:
                    stretches.append(set())
            else:
                stretches[-1].add(height)
        return [s for s in stretches if s]

    def selects(self) -> list[tuple[int, str]]:
        """Each plot-control dropdown as the page shows it: (selectedIndex, text)."""
        return [tuple(x) for x in self.root.evaluate(_SELECTS_JS)]

    def epoch_rows(self) -> Any:
        """The per-epoch table's rows of completed epochs (not the epoch in progress,
        not the note of earlier epochs)."""
        return self.metrics.locator(
            "table tbody tr:not(.nbtrain-running):not(.nbtrain-table-note)")

    def wait_plot(self, timeout: float = 30_000) -> dict:
        """Wait for a decoded plot image with a non-zero size on the page; return its sizes."""
        return self.page.wait_for_function(
            """(img) => {
                const box = img.getBoundingClientRect();
                // before its first image the plot is a blank stand-in, hidden (its room kept)
                return img.complete && img.naturalWidth > 0 && box.width > 0 && box.height > 0
                    && getComputedStyle(img).visibility !== 'hidden'
                    && {natural: [img.naturalWidth, img.naturalHeight],
                        shown: [box.width, box.height]};
            }""", arg=self.plot.element_handle(), timeout=timeout).json_value()


# -- busy cells and Jupyter Notebook 7 ----------------------------------------------------

_PROMPT_BUSY_JS = "(prompt) => prompt.textContent.trim() === '[*]:'"


def start_cell(notebook: Notebook, cell: Any) -> None:
    """Submit one cell (Ctrl+Enter in its editor) without waiting for it: it runs
    at once, or is queued behind a busy cell; its prompt shows `[*]` either way."""
    cell.locator(".jp-InputArea-editor").click()
    notebook.page.keyboard.press("Control+Enter")
    notebook.page.wait_for_function(_PROMPT_BUSY_JS,
                                    arg=cell.locator(".jp-InputPrompt").element_handle())


def cell_busy(cell: Any) -> bool:
    """The cell is executing or queued (its prompt shows `[*]`)."""
    return cell.locator(".jp-InputPrompt").text_content().strip() == "[*]:"


def wait_cell_done(cell: Any, timeout: float = 60_000) -> int:
    """Wait until the cell has an execution count; return it."""
    prompt = cell.locator(".jp-InputPrompt")
    cell.page.wait_for_function(
        "(prompt) => /^\\[\\d+\\]:$/.test(prompt.textContent.trim())",
        arg=prompt.element_handle(), timeout=timeout)
    return int(re.search(r"\d+", prompt.text_content())[0])


def timed_click(dashboard: Dashboard, button: Any, states: str, timeout: float = 10_000) -> float:
    """Click `button` and return the seconds from the click (the page's own click
    event) to the state badge showing one of `states` (`"stopping|stopped"`),
    both read from the page's clock by a MutationObserver."""
    handle = dashboard.page.evaluate_handle(
        """([button, badge, states]) => {
            const pattern = new RegExp(`(^|\\\\s)nbtrain-state-(${states})(\\\\s|$)`);
            const times = {clicked: null, seen: null};
            button.addEventListener('click', () => { times.clicked = performance.now(); },
                                    {capture: true, once: true});
            const observer = new MutationObserver(() => {
                if (times.clicked !== null && pattern.test(badge.className)) {
                    times.seen = performance.now();
                    observer.disconnect();
                }
            });
            observer.observe(badge, {attributes: true, attributeFilter: ['class']});
            return times;
        }""", [button.element_handle(), dashboard.state.element_handle(), states])
    button.click()
    dashboard.page.wait_for_function("(times) => times.seen !== null", arg=handle,
                                     timeout=timeout)
    return handle.evaluate("(times) => (times.seen - times.clicked) / 1000")


class JupyterNotebook(JupyterLab):
    """`jupyter notebook` (Notebook 7, the `notebook` package) from this
    environment, set up as `JupyterLab` is; notebooks open in its own UI."""

    module = "notebook"

    def extra_arguments(self) -> list[str]:
        return [f"--JupyterNotebookApp.app_settings_dir={self.root / 'app-settings'}"]

    def notebook_url(self, name: str) -> str:
        return f"{self.base}/notebooks/{name}?token={self.token}"


class Notebook7(Notebook):
    """A notebook open in Notebook 7's UI: the same notebook widgets as JupyterLab,
    with the kernel's status in the toolbar instead of a status bar."""

    def wait_kernel_idle(self, timeout: float = 60_000) -> None:
        from playwright.sync_api import expect

        expect(self.page.locator(".jp-NotebookKernelStatus")).to_have_count(1, timeout=timeout)
        expect(self.indicator).to_have_attribute("data-status", "idle", timeout=timeout)
        expect(self.page.locator(".jp-NotebookPanel-toolbar")).to_contain_text("Python 3",
                                                                  timeout=timeout)
