"""The command `make lab` runs, as make prints it without running it (`make -n`): the
choices it makes for who runs it (root or not), the display (a browser to open or
none) and `PORT`/`IP`.  tests/browser/test_make_lab.py runs it for real."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
INHERITED_BY_MAKE = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "DISPLAY",
                     "WAYLAND_DISPLAY", "NO_BROWSER", "PORT", "IP")

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")


def lab_command(*assignments: str, **env: str) -> list[str]:
    """The jupyter command line of `make -n lab ASSIGNMENTS` in this checkout."""
    environment = {k: v for k, v in os.environ.items() if k not in INHERITED_BY_MAKE}
    environment.update(env)
    result = subprocess.run(["make", "--no-print-directory", "-n", "lab", *assignments],
                            cwd=REPO, env=environment, capture_output=True, text=True,
                            timeout=60, check=True)
    lines = [line for line in result.stdout.splitlines() if "/bin/jupyter lab " in line]
    assert len(lines) == 1, result.stdout
    return lines[0].split()


def test_defaults_headless():
    command = lab_command()
    assert command[0] == ".venv/bin/jupyter" and command[-1] == "notebooks/quickstart.ipynb"
    for arg in ("--ServerApp.ip=localhost", "--ServerApp.port=8888",
                "--LabApp.default_url=/lab/tree/quickstart.ipynb", "--no-browser"):
        assert arg in command, command
    assert ("--allow-root" in command) == (os.geteuid() == 0), command


@pytest.mark.parametrize("display", [{"DISPLAY": ":0"}, {"WAYLAND_DISPLAY": "wayland-0"}],
                         ids=["x11", "wayland"])
def test_a_display_opens_the_browser(display):
    command = lab_command(**display)
    if os.uname().sysname == "Linux":
        assert "--no-browser" not in command, command
    assert ("--allow-root" in command) == (os.geteuid() == 0), command


def test_overrides():
    command = lab_command("PORT=9123", "IP=0.0.0.0", "NO_BROWSER=1", DISPLAY=":0")
    for arg in ("--ServerApp.ip=0.0.0.0", "--ServerApp.port=9123", "--no-browser"):
        assert arg in command, command
    assert "--no-browser" not in lab_command("NO_BROWSER=")


@pytest.mark.skipif(os.geteuid() != 0, reason="runs make as another user: needs root")
def test_an_ordinary_user_gets_no_allow_root(tmp_path):
    """`--allow-root` follows the effective user: `nobody` running make gets none."""
    copy = tmp_path / "checkout"
    copy.mkdir()
    shutil.copy(REPO / "Makefile", copy / "Makefile")
    shutil.copy(REPO / "pyproject.toml", copy / "pyproject.toml")
    tmp_path.chmod(0o755)
    result = subprocess.run(["make", "-n", "lab"], cwd=copy, capture_output=True, text=True,
                            timeout=60, check=True, user="nobody", group="nogroup",
                            extra_groups=[], env={"PATH": "/usr/bin:/bin"})
    command = next(line for line in result.stdout.splitlines() if "/bin/jupyter lab " in line)
    assert "--no-browser" in command and "--allow-root" not in command, command
