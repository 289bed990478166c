"""The seams of the layout: run states and their transitions, the one wait helper,
the shared text, the one display choice, and the layout check (the rate meter:
tests/dashboard/test_dashboard_rate.py)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from nbtrain.dashboard import notebook
from nbtrain.run.state import ENDED, STATES, TRANSITIONS, State, check_transition
from nbtrain.run.waiting import Deadline, join, wait_until
from nbtrain.text import batch_fraction, epoch_fraction, format_duration

ROOT = Path(__file__).resolve().parent.parent


def test_a_state_is_its_name():
    state = State.PAUSED
    assert state == "paused" and f"{state}" == "paused" and str(state) == "paused"
    assert repr(state) == "'paused'" and json.dumps(state) == '"paused"'
    assert {"paused": 1}[state] == 1
    assert STATES == ("created", "running", "pausing", "paused", "stopping", "stopped", "finished",
                      "failed")
    assert "stopped" in ENDED and "running" not in ENDED


def test_transitions_are_the_diagram():
    assert check_transition("running", "paused") is State.PAUSED
    assert check_transition("pausing", "paused") is State.PAUSED
    for old, new in [("created", "paused"), ("failed", "paused"), ("stopping", "running"),
                     ("created", "stopped")]:
        with pytest.raises(ValueError, match=f"from '{old}' to '{new}'"):
            check_transition(old, new)
    with pytest.raises(ValueError):
        check_transition("running", "sleeping")
    assert TRANSITIONS[State.FAILED] == {State.RUNNING}  # only a lost data worker resumes
    assert set(TRANSITIONS) == set(State)


def test_wait_until_returns_when_notified_and_times_out_with_its_message():
    cond = threading.Condition()
    flag = []

    def later():
        with cond:
            flag.append(1)
            cond.notify_all()

    timer = threading.Timer(0.05, later)
    timer.start()
    with cond:
        wait_until(cond, lambda: bool(flag), Deadline(10))
    timer.join()
    with cond, pytest.raises(TimeoutError, match="still waiting after 0.05 s"):
        wait_until(cond, lambda: False, Deadline(0.05), lambda: "still waiting after 0.05 s")
    assert Deadline(None).remaining() is None


def test_join_honours_the_deadline():
    release = threading.Event()
    thread = threading.Thread(target=release.wait)
    thread.start()
    with pytest.raises(TimeoutError, match="still ending after 0.05 s"):
        join(thread, Deadline(0.05))
    release.set()
    join(thread, Deadline(10))
    assert not thread.is_alive()


def test_shared_text():
    assert format_duration(83) == "1:23" and format_duration(3723) == "1:02:03"
    assert format_duration(None) == format_duration(float("nan")) == "–"
    assert epoch_fraction(2, 5) == "3/5" and epoch_fraction(5, 5) == "5/5"
    assert batch_fraction(13, 100) == "13/100" and batch_fraction(0, None) == "0/?"


def test_one_display_choice(monkeypatch):
    assert notebook.choose_display(False) is None
    assert notebook.choose_display(True) == notebook.DASHBOARD
    assert notebook.choose_display() == notebook.TEXT  # not a notebook here
    assert notebook.choose_display(None, chief=False) is None
    assert notebook.choose_display(True, chief=False) == notebook.DASHBOARD
    with pytest.raises(ValueError, match="`display` must be None, True, False, 'dashboard'"):
        notebook.choose_display("yes")
    monkeypatch.setattr(notebook, "in_notebook", lambda: True)
    assert notebook.choose_display() == notebook.DASHBOARD


def test_layout_has_no_cycle_no_large_class_no_private_reach():
    out = subprocess.run([sys.executable, str(ROOT / "tools" / "check_layout.py")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


ARCHITECTURE = ROOT / "docs" / "architecture.md"
MAP_ENTRY = re.compile(r"^- `([\w/]+\.py)`:", re.MULTILINE)  # "- `run/state.py`: ..."
PY_PATH = re.compile(r"`([\w./-]+\.py)`")  # any `.py` path the page names


def test_architecture_map_names_every_module_and_only_real_ones():
    """docs/architecture.md is the package's map: a module added, moved or renamed
    without its line on the map fails here, and so does a path the page names that
    is not there (relative to nbtrain/, or to the repository for tests/, tools/ ...)."""
    text = ARCHITECTURE.read_text(encoding="utf-8")
    package = ROOT / "nbtrain"
    modules = {path.relative_to(package).as_posix() for path in package.rglob("*.py")}
    _, found, map_section = text.partition("\n## The map\n")
    assert found, "docs/architecture.md has no '## The map' section"
    map_section = map_section.split("\n## ", 1)[0]
    entries = MAP_ENTRY.findall(map_section)
    assert sorted(modules - set(entries)) == [], "modules with no line on the map"
    assert sorted(set(entries) - modules) == [], "map lines naming no module of nbtrain/"
    assert len(entries) == len(set(entries)), "a module with two lines on the map"
    named = set(PY_PATH.findall(text))
    stale = sorted(name for name in named
                   if not (package / name).is_file() and not (ROOT / name).is_file())
    assert stale == [], "paths named in docs/architecture.md that do not exist"


def test_architecture_is_a_map_not_a_log():
    lines = ARCHITECTURE.read_text(encoding="utf-8").count("\n")
    assert lines <= 520, f"docs/architecture.md is {lines} lines: keep it a map (about 500)"

