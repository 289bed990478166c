# Two entry points for a fresh clone:
#   make lab   - set everything up and open JupyterLab on the quickstart notebook
#   make test  - set everything up and run every test
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

export TF_CPP_MIN_LOG_LEVEL ?= 3

.PHONY: lab test setup lint bench clean binder-check notebooks

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): $(PY) pyproject.toml
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

NBVAL := --nbval --nbval-current-env --nbval-sanitize-with notebooks/sanitize.cfg \
	--nbval-cell-timeout 300

test: $(STAMP)
	$(PY) -m ruff check nbtrain tests benchmarks tools
	$(PY) -m pytest tests
	$(PY) -m pytest $(NBVAL) notebooks

# Run the notebooks and store their outputs (after changing one).
notebooks: $(STAMP)
	$(VENV)/bin/jupyter nbconvert --to notebook --execute --inplace notebooks/*.ipynb
	$(PY) tools/clean_notebook_outputs.py notebooks/*.ipynb

# What mybinder.org's repo2docker would do, with Python's own tools.
BINDER_VENV := .binder-venv
binder-check:
	rm -rf $(BINDER_VENV)
	$(PYTHON) -m venv $(BINDER_VENV)
	$(BINDER_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BINDER_VENV)/bin/python -m pip install --quiet -r binder/requirements.txt
	$(BINDER_VENV)/bin/python -m pip install --quiet pytest pytest-timeout nbval ipykernel
	$(BINDER_VENV)/bin/pytest $(NBVAL) notebooks

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/quickstart.ipynb

lint: $(STAMP)
	$(PY) -m ruff check nbtrain tests benchmarks

bench: $(STAMP)
	$(PY) benchmarks/bench_loop.py

clean:
	rm -rf $(VENV) build dist *.egg-info
