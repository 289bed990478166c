"""Where nbtrain runs (issue 29): each frontend's markers faked, the display chosen
for it by default, `display=` and `NBTRAIN_DISPLAY` over that default."""

from __future__ import annotations

import sys
import types
from types import SimpleNamespace

import pytest

from nbtrain.dashboard import notebook

MARKERS = ("COLAB_RELEASE_TAG", "COLAB_GPU", "KAGGLE_KERNEL_RUN_TYPE", "KAGGLE_URL_BASE",
           "VSCODE_PID", "VSCODE_CWD", notebook.ENV_DISPLAY)


@pytest.fixture
def kernel(monkeypatch):
    """A notebook kernel with no frontend's marker: returns its user namespace."""
    import IPython

    for name in MARKERS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    shell = SimpleNamespace(kernel=object(), user_ns={})
    monkeypatch.setattr(IPython, "get_ipython", lambda: shell)
    return shell.user_ns


def test_jupyter_is_any_kernel_without_another_frontends_marks(kernel, monkeypatch):
    monkeypatch.setenv("JPY_SESSION_NAME", "/home/me/train.ipynb")
    assert notebook.frontend() == notebook.JUPYTER
    assert notebook.choose_display() == notebook.DASHBOARD


@pytest.mark.parametrize("variable", ["COLAB_RELEASE_TAG", "COLAB_GPU"])
def test_colab_by_its_environment(kernel, monkeypatch, variable):
    monkeypatch.setenv(variable, "release-colab_20261201")
    assert notebook.frontend() == notebook.COLAB
    assert notebook.choose_display() == notebook.HTML


def test_colab_by_its_module(kernel, monkeypatch):
    colab = types.ModuleType("google.colab")
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    assert notebook.frontend() == notebook.COLAB
    assert notebook.choose_display() == notebook.HTML


def test_kaggle(kernel, monkeypatch):
    monkeypatch.setenv("KAGGLE_KERNEL_RUN_TYPE", "Interactive")
    assert notebook.frontend() == notebook.KAGGLE
    assert notebook.choose_display() == notebook.HTML


@pytest.mark.parametrize("variable", ["VSCODE_PID", "VSCODE_CWD"])
def test_vscode_by_its_environment(kernel, monkeypatch, variable):
    monkeypatch.setenv(variable, "4242")
    assert notebook.frontend() == notebook.VSCODE
    assert notebook.choose_display() == notebook.DASHBOARD


def test_vscode_by_its_notebook_file_in_the_namespace(kernel):
    kernel["__vsc_ipynb_file__"] = "/home/me/train.ipynb"
    assert notebook.frontend() == notebook.VSCODE


def test_colab_and_kaggle_win_over_a_vscode_that_started_them(kernel, monkeypatch):
    monkeypatch.setenv("VSCODE_PID", "1")  # e.g. a kernel launched from VS Code's terminal
    monkeypatch.setenv("KAGGLE_KERNEL_RUN_TYPE", "Batch")
    assert notebook.frontend() == notebook.KAGGLE


def test_no_kernel_is_a_console_with_text(monkeypatch):
    import IPython

    for name in MARKERS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COLAB_RELEASE_TAG", "x")  # no kernel: markers do not matter
    monkeypatch.setattr(IPython, "get_ipython", lambda: SimpleNamespace(kernel=None))
    assert notebook.frontend() == notebook.CONSOLE
    assert notebook.choose_display() == notebook.TEXT


def test_every_frontend_has_a_default():
    assert set(notebook.FRONTEND_DISPLAYS) == {notebook.COLAB, notebook.KAGGLE, notebook.VSCODE,
                                              notebook.JUPYTER, notebook.CONSOLE}
    assert set(notebook.FRONTEND_DISPLAYS.values()) <= set(notebook.DISPLAYS)


@pytest.mark.parametrize(("value", "chosen"), [
    ("dashboard", notebook.DASHBOARD), ("HTML", notebook.HTML), ("text", notebook.TEXT),
    ("none", None), (" html ", notebook.HTML)])
def test_the_environment_variable_overrides_the_frontend(kernel, monkeypatch, value, chosen):
    monkeypatch.setenv("COLAB_RELEASE_TAG", "x")
    monkeypatch.setenv(notebook.ENV_DISPLAY, value)
    assert notebook.choose_display() == chosen


def test_the_argument_overrides_both(kernel, monkeypatch):
    monkeypatch.setenv("COLAB_RELEASE_TAG", "x")
    monkeypatch.setenv(notebook.ENV_DISPLAY, "text")
    assert notebook.choose_display("dashboard") == notebook.DASHBOARD
    assert notebook.choose_display(True) == notebook.DASHBOARD
    assert notebook.choose_display("html") == notebook.HTML
    assert notebook.choose_display(False) is None


def test_a_worker_that_is_not_the_chief_shows_nothing_whatever_the_environment(
        kernel, monkeypatch):
    monkeypatch.setenv(notebook.ENV_DISPLAY, "html")
    assert notebook.choose_display(chief=False) is None
    assert notebook.choose_display("html", chief=False) == notebook.HTML


def test_bad_values_are_refused(kernel, monkeypatch):
    with pytest.raises(ValueError, match="`display` must be"):
        notebook.choose_display("widgets")
    monkeypatch.setenv(notebook.ENV_DISPLAY, "widgets")
    with pytest.raises(ValueError, match="NBTRAIN_DISPLAY='widgets'"):
        notebook.choose_display()


def test_fit_refuses_a_bad_display_before_anything_starts():
    import nbtrain

    with pytest.raises(ValueError, match="`display` must be"):
        nbtrain.fit(None, None, display="widgets")


# -- a run or search shown as a cell's result: the display its training chose -------------

class Shown:
    """Anything a display can be remembered for (a Run, a search)."""


def test_a_cells_result_follows_the_frontend_and_the_environment(kernel, monkeypatch):
    never_shown = Shown()
    assert notebook.cell_display(never_shown) == notebook.DASHBOARD  # JupyterLab
    monkeypatch.setenv("COLAB_RELEASE_TAG", "x")
    assert notebook.cell_display(never_shown) == notebook.HTML  # Colab
    monkeypatch.setenv(notebook.ENV_DISPLAY, "dashboard")
    assert notebook.cell_display(never_shown) == notebook.DASHBOARD
    monkeypatch.setenv(notebook.ENV_DISPLAY, "none")  # nothing by default: its repr
    assert notebook.cell_display(never_shown) == notebook.TEXT


def test_a_cells_result_follows_the_display_given_to_its_training(kernel, monkeypatch):
    monkeypatch.setenv("COLAB_RELEASE_TAG", "x")
    given = {display: Shown() for display in ("dashboard", "html", "text", False)}
    for display, obj in given.items():
        notebook.remember_display(obj, notebook.choose_display(display))
    assert notebook.cell_display(given["dashboard"]) == notebook.DASHBOARD  # over Colab's
    assert notebook.cell_display(given["html"]) == notebook.HTML
    assert notebook.cell_display(given["text"]) == notebook.TEXT
    assert notebook.cell_display(given[False]) == notebook.HTML  # none given: the frontend's
    notebook.remember_display(1, notebook.HTML)  # not weakly referable: not remembered
    assert notebook.cell_display(1) == notebook.HTML


def test_a_run_on_a_cells_last_line_shows_the_display_fit_chose(ipython, cell, comm_log):
    """Through IPython's display formatter, as a cell's result is shown (no kernel
    here: the frontend's default is text)."""
    from helpers import make_data, make_model

    import nbtrain

    x, y = make_data(32)
    shown = {}
    for display in ("html", "dashboard", False):
        run = nbtrain.fit(make_model(), x, y, epochs=1, batch_size=16, display=display)
        run.wait(timeout=60)
        before = len(cell.order)
        ipython.display_formatter.format(run)  # `run` as a cell's last line
        shown[display] = cell.outputs()[before:]
        run.close()
    (html,) = shown["html"]  # one HTML output, no widget
    assert 'class="nbtrain-html"' in html["text/html"] and notebook.WIDGET_MIMETYPE not in html
    assert "nbtrain-state-finished" in html["text/html"]
    widget, _table, _plot = shown["dashboard"]  # the widgets and their snapshot outputs
    assert notebook.WIDGET_MIMETYPE in widget
    (text,) = shown[False]  # no display given, no notebook: the run's repr
    assert text == {"text/plain": repr(run)}
