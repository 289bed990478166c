# Two entry points for a fresh clone:
#   make lab   - set everything up and open JupyterLab on the quickstart notebook
#   make test  - set everything up and run every test
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

export TF_CPP_MIN_LOG_LEVEL ?= 3

.PHONY: lab test setup lint bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): $(PY) pyproject.toml
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

test: $(STAMP)
	$(PY) -m ruff check nbtrain tests benchmarks
	$(PY) -m pytest

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/quickstart.ipynb

lint: $(STAMP)
	$(PY) -m ruff check nbtrain tests benchmarks

bench: $(STAMP)
	$(PY) benchmarks/bench_loop.py

clean:
	rm -rf $(VENV) build dist *.egg-info
