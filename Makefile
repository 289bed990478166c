# Two entry points for a fresh clone:
#   make lab   - set everything up and open JupyterLab on the quickstart notebook
#   make test  - set everything up and run every test
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

export TF_CPP_MIN_LOG_LEVEL ?= 3
# Python caches the bytecode of what it imports (in __pycache__, here mostly the venv's):
# with PYTHONDONTWRITEBYTECODE set in the environment, every process compiled TensorFlow
# and Keras again, 24 s an `import keras` here against 10 s from the cache, paid by every
# test process, kernel and worker.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: lab test test-backends ipykernel6 setup lint bench clean binder-check notebooks

$(PY):
	@$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); \
	    echo "make: '$(PYTHON) -m venv' failed: Python 3.10+ with its venv module is needed" \
	         "(Debian/Ubuntu: apt-get install python3-venv), or pass PYTHON=/path/to/python3" >&2; \
	    exit 1; }
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): $(PY) pyproject.toml
	@echo "Installing nbtrain and its dependencies into $(VENV)/ (a few minutes the first time)"
	$(PY) -m pip install --quiet --no-compile -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

# nbval's markers are cell tags (nbval-ignore-output, nbval-skip), not comments in the cells.
NBVAL := --nbval --nbval-current-env --nbval-sanitize-with notebooks/sanitize.cfg \
	--nbval-cell-timeout 300

# Two pytest workers (pytest-xdist): the browser tests, about half the time, run in one
# (tests/conftest.py groups them), every other test file goes whole to whichever is free.
# The notebooks run one at a time: with two workers an nbval kernel died at start once in
# four runs (cause unknown: nbval drops the kernel's stderr); 83 s against 55 s.
XDIST := -n 2 --dist loadgroup

test: $(STAMP)
	$(PY) -m ruff check nbtrain tests benchmarks tools
	$(PY) -m pytest $(XDIST) tests
	$(MAKE) --no-print-directory test-backends
	$(PY) -m pytest $(NBVAL) notebooks

# Backend-neutral tests again under JAX and PyTorch (installed here, not by `make lab`):
# a subset, about 1.5 min a backend; the rest of the suite is TensorFlow's.
BACKEND_TESTS := tests/backends tests/engine/test_interrupt.py tests/run/test_run_truth.py \
	tests/run/test_run_close.py tests/dashboard/test_dashboard_training.py
BACKENDS_STAMP := $(VENV)/.backends-installed
# --no-compile (here and above): byte-compiling every module at install took 3/4 of the
# time for torch and jax (208 s against 53 s) and a quarter for TensorFlow and Jupyter
# (112 s against 84 s), measured under load; Python compiles what is imported, once.
$(BACKENDS_STAMP): $(STAMP)
	$(PY) -m pip install --quiet --no-compile -e '.[test-backends]'
	touch $(BACKENDS_STAMP)

test-backends: $(BACKENDS_STAMP)
	KERAS_BACKEND=jax $(PY) -m pytest -q $(XDIST) $(BACKEND_TESTS)
	KERAS_BACKEND=torch $(PY) -m pytest -q $(XDIST) $(BACKEND_TESTS)

# A kernel with ipykernel 6 (its last release) for tests/browser/test_ipykernel6_browser.py,
# which the browser tests' JupyterLab starts as a kernelspec of its own: a virtualenv in
# $(VENV)/ that holds ipykernel 6 (and nest-asyncio, which 6 needs and 7 dropped) and sees
# everything else of $(VENV), nbtrain's editable install included, through a .pth file
# (site.addsitedir, after its own packages): a few seconds, where a second TensorFlow
# would take minutes.  `make test` builds it.
KERNEL6 := $(VENV)/ipykernel6
KERNEL6_STAMP := $(KERNEL6)/.installed
$(KERNEL6_STAMP): $(STAMP)
	rm -rf $(KERNEL6)
	$(PY) -m venv --without-pip $(KERNEL6)
	site=$$($(KERNEL6)/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])') \
	&& main=$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])') \
	&& $(PY) -m pip install --quiet --no-compile --no-deps --target "$$site" \
	    'ipykernel==6.31.0' 'nest-asyncio>=1.4' \
	&& echo "import site; site.addsitedir('$$main')" > "$$site/nbtrain-main-venv.pth"
	$(KERNEL6)/bin/python -c 'import ipykernel, nbtrain; assert ipykernel.version_info[0] == 6'
	touch $(KERNEL6_STAMP)

ipykernel6: $(KERNEL6_STAMP)
test: $(KERNEL6_STAMP)

# Run the notebooks and store their outputs (after changing one; the quickstart waits for
# its minute-long run, which nbval skips: cell tag nbval-skip), then clean them so they
# open unmodified in JupyterLab (tools/clean_notebook_outputs.py).
notebooks: $(STAMP)
	$(VENV)/bin/jupyter nbconvert --to notebook --execute --inplace notebooks/*.ipynb
	$(PY) tools/clean_notebook_outputs.py notebooks/*.ipynb

# What mybinder.org's repo2docker would do, with Python's own tools.
BINDER_VENV := .binder-venv
binder-check:
	rm -rf $(BINDER_VENV)
	$(PYTHON) -m venv $(BINDER_VENV)
	$(BINDER_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BINDER_VENV)/bin/python -m pip install --quiet --no-compile -r binder/requirements.txt
	$(BINDER_VENV)/bin/python -m pip install --quiet --no-compile pytest pytest-timeout nbval ipykernel
	$(BINDER_VENV)/bin/pytest $(NBVAL) notebooks

# make lab: JupyterLab on notebooks/quickstart.ipynb at http://$(IP):$(PORT) (the next free
# port if that one is taken); it prints the URL with its token.  On Linux without a display
# (DISPLAY, WAYLAND_DISPLAY) it opens no browser; NO_BROWSER=1 or NO_BROWSER= forces either.
PORT ?= 8888
IP ?= localhost
NO_BROWSER ?= $(if $(filter Linux,$(shell uname -s)),$(if $(DISPLAY)$(WAYLAND_DISPLAY),,1))
LAB_ARGS = --ServerApp.ip=$(IP) --ServerApp.port=$(PORT) \
	--LabApp.default_url=/lab/tree/quickstart.ipynb \
	$(if $(filter 0,$(shell id -u)),--allow-root) $(if $(NO_BROWSER),--no-browser)

lab: $(STAMP)
	@$(if $(NO_BROWSER),echo "No display: open the URL printed below in a browser" \
	    "(on a remote machine, forward the port first: ssh -L $(PORT):localhost:$(PORT) <host>)")
	$(VENV)/bin/jupyter lab $(LAB_ARGS) notebooks/quickstart.ipynb

lint: $(STAMP)
	$(PY) -m ruff check nbtrain tests benchmarks

bench: $(STAMP)
	$(PY) benchmarks/bench_loop.py

clean:
	rm -rf $(VENV) build dist *.egg-info
