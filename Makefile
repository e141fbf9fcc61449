# Two commands do everything on a fresh machine: `make demo` (the main job) and `make test` (all tests).
# Both create the project-local virtualenv .venv first, from the exact versions in requirements/constraints.txt.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# tcmalloc steadies PyTorch's CPU speed (glibc malloc made training times noisy); used when installed.
TCMALLOC := $(firstword $(wildcard /usr/lib/*-linux-gnu/libtcmalloc_minimal.so.4 /usr/lib64/libtcmalloc_minimal.so.4))
export LD_PRELOAD := $(TCMALLOC)

.PHONY: demo test venv check-sync nbtest pytest docs-check lab-check bench clean

$(STAMP): pyproject.toml requirements/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q -c requirements/constraints.txt -e '.[dev]'
	touch $@

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/skinseg demo --overwrite

# Every step writes its temporary files into one scratch TMPDIR that must hold no files at the end (empty
# cache folders such as PyTorch's torchinductor_<user> may stay): leftovers once filled CI's disk ("No space
# left on device"), so they fail a passing run. The folder goes either way (pytest keeps failed tests' files in it).
# Jupyter's and IPython's own folders (profiles, runtime files, config) go to another temporary folder, removed
# at the end, so that no run leaves ~/.ipython, ~/.jupyter or ~/.local/share/jupyter behind.
test: $(STAMP)
	@scratch=$$(mktemp -d -t skinseg-test.XXXXXX); jhome=$$(mktemp -d -t skinseg-jupyter.XXXXXX); \
	IPYTHONDIR=$$jhome/ipython JUPYTER_CONFIG_DIR=$$jhome/config JUPYTER_DATA_DIR=$$jhome/data \
	JUPYTER_RUNTIME_DIR=$$jhome/runtime TMPDIR=$$scratch \
	  $(MAKE) --no-print-directory check-sync nbtest pytest docs-check lab-check; rc=$$?; rm -rf $$jhome; \
	left=$$(cd $$scratch && find . -type f | sed 's|^\./||' | sort | head -20); rm -rf $$scratch; \
	if [ $$rc -eq 0 ] && [ -n "$$left" ]; then echo "ERROR: the tests left these files in TMPDIR:"; echo "$$left"; rc=1; fi; \
	exit $$rc

# The notebooks are the source: exporting and cleaning them must change nothing.
check-sync: $(STAMP)
	@snap=$$(mktemp -d); trap 'rm -rf $$snap' EXIT; cp -r skinseg nbs $$snap/; \
	$(BIN)/nbdev-export && $(BIN)/nbdev-clean && \
	if ! diff -r -q -x __pycache__ $$snap/skinseg skinseg || ! diff -r -q -x .ipynb_checkpoints $$snap/nbs nbs; then \
	  echo "ERROR: nbdev-export/nbdev-clean changed the files above: notebooks and skinseg/ were out of sync or unclean." \
	       "Commit the result of 'nbdev-export && nbdev-clean'."; exit 1; fi; \
	$(BIN)/python docs/make_readme.py --check || exit 1; \
	echo "check-sync: notebooks clean, skinseg/ matches nbdev-export, README.md matches index.ipynb"

nbtest: $(STAMP)
	$(BIN)/nbdev-test --n-workers 2

pytest: $(STAMP)
	$(BIN)/pytest

docs-check: $(STAMP)
	$(BIN)/python docs/check_docs.py

# The first tutorial run in JupyterLab in headless Chromium (screenshot in docs_check/, so after docs-check, which
# empties that folder). The tutorials themselves run in a Jupyter kernel in `pytest` (tests/test_tutorials.py).
lab-check: $(STAMP)
	$(BIN)/python docs/check_lab.py

bench: $(STAMP)
	for b in benchmarks/bench_*.py; do $(BIN)/python $$b || exit 1; done
	$(BIN)/python benchmarks/bench_predict.py --model random --size 256 256 --out benchmarks/results/predict_256x256.json

clean:
	rm -rf _docs _proc docs_check .pytest_cache
