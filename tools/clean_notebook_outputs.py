"""Drop TensorFlow's C++ start-up messages from stored notebook outputs.

TensorFlow writes them to the process's stderr before `TF_CPP_MIN_LOG_LEVEL`
is read; they vary from run to run (timestamps, process ids) and tell a reader
nothing.  `make notebooks` runs this after executing the notebooks.

Usage: python tools/clean_notebook_outputs.py notebooks/*.ipynb
"""

from __future__ import annotations

import re
import sys

import nbformat

NOISE = re.compile(r"absl::InitializeLog|^[IWE]\d{4} [\d:. ]+\d+ \w+\.cc:\d+\]", re.M)


def clean(path: str) -> int:
    """Remove stderr outputs that are only TensorFlow start-up noise; return how many."""
    notebook = nbformat.read(path, as_version=4)
    removed = 0
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        kept = []
        for output in cell.outputs:
            if output.get("name") == "stderr" and NOISE.search(output.get("text", "")):
                lines = [line for line in output["text"].splitlines(keepends=True)
                         if not NOISE.search(line)
                         and not line.startswith("To enable the following instructions")]
                if not "".join(lines).strip():
                    removed += 1
                    continue
                output["text"] = "".join(lines)
            kept.append(output)
        cell.outputs = kept
    nbformat.write(notebook, path)
    return removed


if __name__ == "__main__":
    for name in sys.argv[1:]:
        print(f"{name}: removed {clean(name)} noise outputs")
