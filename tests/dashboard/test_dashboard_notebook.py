"""Notebook detection, the display choice (and fit_generator's progress), raw display bundles."""

from __future__ import annotations

import base64
import sys
from types import SimpleNamespace

import pytest

import nbtrain.dashboard
from nbtrain.dashboard import display, notebook
from nbtrain.engine.progress import TextProgress


def test_not_a_notebook_here():
    assert not notebook.in_notebook()


def fake_shell(monkeypatch, shell):
    import IPython

    monkeypatch.setattr(IPython, "get_ipython", lambda: shell)


def test_a_kernel_shell_is_a_notebook(monkeypatch):
    fake_shell(monkeypatch, SimpleNamespace(kernel=object()))
    assert notebook.in_notebook()
    fake_shell(monkeypatch, SimpleNamespace(kernel=None))  # terminal IPython
    assert not notebook.in_notebook()
    fake_shell(monkeypatch, None)
    assert not notebook.in_notebook()


def test_progress_for(monkeypatch):
    assert display.progress_for(0) is None
    assert isinstance(display.progress_for(1), TextProgress)
    assert display.progress_for(2).verbose == 2
    monkeypatch.setattr(notebook, "in_notebook", lambda: True)
    dashboard = display.progress_for(1)
    try:
        assert isinstance(dashboard, nbtrain.dashboard.Dashboard)
        assert dashboard.run is None and dashboard.view.controls.layout.display == "none"
    finally:
        dashboard.close()
    assert display.progress_for(2).verbose == 2  # one line per epoch stays text
    with pytest.raises(ValueError):
        display.progress_for(3)


def test_bundles():
    bundle = notebook.widget_bundle("abc")
    assert bundle == {
        "application/vnd.jupyter.widget-view+json":
            {"version_major": 2, "version_minor": 0, "model_id": "abc"},
        "text/plain": "nbtrain dashboard",
    }
    png = notebook.png_bundle(b"\x89PNG", "<plot>")
    assert base64.b64decode(png["image/png"]) == b"\x89PNG" and png["text/plain"] == "<plot>"


def test_show_and_update_do_nothing_without_a_shell(capsys):
    assert notebook.show({"text/plain": "x"}) is None
    notebook.update("some-id", {"text/plain": "x"})
    notebook.update(None, {})
    assert capsys.readouterr().out == ""


def test_package_is_light_until_a_dashboard_is_made():
    code = ("import sys, nbtrain.dashboard\n"
            "from nbtrain.dashboard import in_notebook, progress_for\n"
            "print(in_notebook(), 'ipywidgets' in sys.modules, 'matplotlib' in sys.modules)\n")
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.stdout.split() == ["False", "False", "False"], out.stderr
