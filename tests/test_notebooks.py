"""The shipped notebooks as a newcomer meets them (their execution is nbval's part, `make
test`; opening the quickstart in JupyterLab, tests/browser/test_make_lab.py): no test
markers in the cells a reader sees, stored outputs that open clean, nbtrain imported
before Keras, the quickstart's run to steer, the steering notebook's dashboard; and
tools/clean_notebook_outputs.py, which `make notebooks` runs."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def load_tool():
    spec = importlib.util.spec_from_file_location(
        "clean_notebook_outputs", REPO / "tools" / "clean_notebook_outputs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


clean_tool = load_tool()


def code_cells(path: Path) -> list:
    return [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]


def test_the_notebooks_are_there():
    names = {path.stem for path in NOTEBOOKS}
    assert {"quickstart", "steering", "controls"} <= names, names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_nbval_markers_are_tags_nbval_reads(path):
    from nbval.plugin import comment_markers, metadata_tags

    for cell in code_cells(path):
        for line in cell.source.splitlines():
            comment = line.strip().lstrip("#").strip()
            assert comment not in comment_markers, f"{path.name}: a marker comment: {line!r}"
        for tag in cell.metadata.get("tags", []):
            assert tag in metadata_tags, f"{path.name}: nbval does not read the tag {tag!r}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_stored_outputs_open_clean(path):
    notebook = nbformat.read(path, as_version=4)
    assert "widgets" not in notebook.metadata
    name = clean_tool.kernel_display_name(notebook.metadata.kernelspec.name)
    assert notebook.metadata.kernelspec.display_name == name == "Python 3 (ipykernel)"
    for cell in code_cells(path):
        assert "execution" not in cell.metadata
        for output in cell.outputs:
            assert WIDGET_VIEW not in output.get("data", {}), f"{path.name}: {cell.source[:60]}"
            if output.get("name") == "stderr":
                assert not clean_tool.NOISE.search(output["text"]), output["text"]
                assert "absl" not in output["text"], output["text"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_nbtrain_is_imported_before_keras(path):
    """TensorFlow's start-up lines stay out of the notebook only if nbtrain's import hook
    is in place when Keras (or TensorFlow) is first imported (nbtrain.tf_startup)."""
    seen = False
    for cell in code_cells(path):
        for line in cell.source.splitlines():
            if re.match(r"(%load_ext nbtrain|import nbtrain)\b", line):
                seen = True
            if re.match(r"(import (keras|tensorflow)|from (keras|tensorflow)[ .])", line):
                assert seen, f"{path.name}: {line!r} before nbtrain is imported"
                return
    pytest.fail(f"{path.name} imports neither Keras nor TensorFlow")


def test_quickstart_gives_a_run_of_about_a_minute_to_steer():
    notebook = nbformat.read(REPO / "notebooks" / "quickstart.ipynb", as_version=4)
    text = "\n".join(c.source for c in notebook.cells if c.cell_type == "markdown")
    assert "about a minute" in text
    for control in ("**Pause**", "**Resume**", "**Stop**", "**learning rate**", "**Continue**"):
        assert control in text, control
    cells = [c for c in notebook.cells if c.cell_type == "code"]
    start = [i for i, c in enumerate(cells) if c.source.startswith("long_run = nbtrain.fit(")]
    assert len(start) == 1
    epochs = int(re.search(r"epochs=(\d+)", cells[start[0]].source)[1])
    assert epochs >= 40
    assert cells[start[0]].metadata.get("tags") == ["nbval-ignore-output"]
    # the next cell waits for it: nbval skips it (CI does not wait the minute), nbconvert
    # runs it, so the stored notebook shows the whole run
    waits = cells[start[0] + 1]
    assert "long_run.wait()" in waits.source and waits.metadata.get("tags") == ["nbval-skip"]
    stored = [o for o in cells[start[0]].outputs if "text/html" in o.get("data", {})]
    assert stored and f"epoch {epochs} / {epochs}" in stored[0]["data"]["text/plain"]


def test_steering_shows_the_live_dashboard():
    cells = code_cells(REPO / "notebooks" / "steering.ipynb")
    fit = [c for c in cells if c.source.startswith("steered = nbtrain.fit(")]
    assert len(fit) == 1 and "display=False" not in fit[0].source
    plots = [o["data"]["text/plain"] for o in fit[0].outputs if "image/png" in o.get("data", {})]
    assert len(plots) == 1 and "learning_rate" in plots[0], plots


def test_clean_tool(tmp_path):
    notebook = nbformat.v4.new_notebook(metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "widgets": {"application/vnd.jupyter.widget-state+json": {"state": {}}},
    })
    cell = nbformat.v4.new_code_cell("run = nbtrain.fit(model, x, y)")
    cell.metadata["execution"] = {"iopub.status.busy": "2026-12-01T00:00:00Z"}
    cell.outputs = [
        nbformat.v4.new_output("stream", name="stderr", text=(
            "WARNING: All log messages before absl::InitializeLog() is called are written to "
            "STDERR\nI0000 00:00:1796631399.715806    7678 port.cc:153] oneDNN custom "
            "operations are on.\n")),
        nbformat.v4.new_output("stream", name="stderr", text="a real warning\n"),
        nbformat.v4.new_output("display_data", data={
            WIDGET_VIEW: {"model_id": "m1", "version_major": 2, "version_minor": 0},
            "text/plain": "nbtrain dashboard"}),
        nbformat.v4.new_output("display_data", data={
            "text/html": "<div class='nbtrain-snapshot'>finished</div>", "text/plain": "finished"}),
    ]
    notebook.cells = [cell]
    path = tmp_path / "n.ipynb"
    nbformat.write(notebook, path)
    removed = clean_tool.clean(str(path))
    assert removed == {"widget outputs": 1, "noise outputs": 1, "timestamps": 1}
    cleaned = nbformat.read(path, as_version=4)
    assert "widgets" not in cleaned.metadata
    assert cleaned.metadata.kernelspec.display_name == "Python 3 (ipykernel)"
    outputs = cleaned.cells[0].outputs
    assert [o.get("text") or o["data"]["text/plain"] for o in outputs] == [
        "a real warning\n", "finished"]
    assert "execution" not in cleaned.cells[0].metadata
