"""Make executed notebooks open clean: what `make notebooks` runs after executing them.

A notebook executed by `jupyter nbconvert --execute` and stored as is opens in
JupyterLab with a stray line and marked as modified.  For each notebook given,
this:

- drops the live dashboard's widget output (`application/vnd.jupyter.widget-view+json`)
  and the widget state nbconvert stores in the notebook's metadata.  Opened
  from disk, a notebook is not trusted, so JupyterLab draws no widget and shows
  the output's plain-text fallback instead ("nbtrain dashboard", above the
  dashboard's static snapshot); with no kernel behind it the widget could not
  be drawn anyway.  The snapshot (final state, metric table and plot, ordinary
  outputs of the same cell) is what a stored notebook shows, in JupyterLab,
  on GitHub and in nbviewer.  Running the cell makes a live dashboard again.
- names the kernel as JupyterLab does (the installed kernel's display name,
  "Python 3 (ipykernel)"): nbconvert keeps the notebook's own, and JupyterLab
  rewrites it on opening, which marks the notebook modified;
- drops nbconvert's execution timestamps from the cells' metadata (they change
  on every run and say nothing to a reader);
- drops TensorFlow's C++ start-up lines from stderr outputs, should any remain
  (`import nbtrain` before Keras keeps them out: nbtrain.tf_startup).

Usage: python tools/clean_notebook_outputs.py notebooks/*.ipynb
"""

from __future__ import annotations

import re
import sys

import nbformat

NOISE = re.compile(r"absl::InitializeLog|^[IWE]\d{4} [\d:. ]+\d+ \w+\.cc:\d+\]", re.M)
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def kernel_display_name(name: str) -> str | None:
    """The display name of the installed kernel `name` (None if there is none)."""
    try:
        from jupyter_client.kernelspec import KernelSpecManager

        return KernelSpecManager().get_kernel_spec(name).display_name
    except Exception:  # no such kernel here: leave the notebook's name as it is
        return None


def without_noise(output: dict) -> dict | None:
    """A stderr output without TensorFlow's start-up lines (None: nothing left)."""
    if output.get("name") != "stderr" or not NOISE.search(output.get("text", "")):
        return output
    lines = [line for line in output["text"].splitlines(keepends=True)
             if not NOISE.search(line) and not line.startswith("To enable the following instructions")]
    if not "".join(lines).strip():
        return None
    output["text"] = "".join(lines)
    return output


def clean(path: str) -> dict[str, int]:
    """Clean the notebook at `path` in place; return what was removed, by kind."""
    notebook = nbformat.read(path, as_version=4)
    removed = {"widget outputs": 0, "noise outputs": 0, "timestamps": 0}
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        if cell.metadata.pop("execution", None) is not None:
            removed["timestamps"] += 1
        kept = []
        for output in cell.outputs:
            if WIDGET_VIEW in output.get("data", {}):
                removed["widget outputs"] += 1
                continue
            output = without_noise(output)
            if output is None:
                removed["noise outputs"] += 1
                continue
            kept.append(output)
        cell.outputs = kept
    notebook.metadata.pop("widgets", None)
    spec = notebook.metadata.get("kernelspec")
    if spec and spec.get("name"):
        spec["display_name"] = kernel_display_name(spec["name"]) or spec.get("display_name")
    nbformat.write(notebook, path)
    return removed


if __name__ == "__main__":
    for name in sys.argv[1:]:
        found = clean(name)
        print(f"{name}: removed " + ", ".join(f"{count} {kind}" for kind, count in found.items()))
