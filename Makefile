# collapse-diffusion: the pipeline from file targets.
#   make study                 the default study on the embedded digits data (CPU, minutes)
#   make study CONFIG=configs/mnist.yaml
#   make -j 2 study            at most 2 cycles at a time (default: the config's worker slots)
# A study is a file target per chain and cycle (RUN.mk, written by `collapse-diffusion chains --make`):
# each seed's shared cycle 1, then one chain per (seed, paradigm, arm). Chains run side by side, a
# rerun does only what is missing, and RUN/metrics.jsonl is the same whatever the split.
#   make test                  the test suite (lint included), on TEST_WORKERS=2 pytest workers
#   make test-fast             the suite without the slow end-to-end tests: the edit loop
#   make notebook              the analysis notebook in JupyterLab
# The first target that needs Python creates .venv and installs the package (uv when it is at hand
# or installable, else pip), with every dependency compiled to bytecode at install time: where
# PYTHONDONTWRITEBYTECODE is set, nothing else would, and each process (a cycle, a test's CLI run)
# would compile torch's and diffusers' sources again at import (13 s instead of 4 on 2 cores).
PYTHON ?= python3
VENV ?= .venv
CONFIG ?= configs/digits.yaml
RUN ?= runs/$(basename $(notdir $(CONFIG)))
INSTALLED ?= $(VENV)/.installed
CD ?= $(VENV)/bin/collapse-diffusion
PYTEST_ARGS ?=
# pytest workers (pytest-xdist): the suite's tests are mostly single-threaded processes; 0 runs it in one process
TEST_WORKERS ?= 2
PYTEST = $(VENV)/bin/python -m pytest $(if $(filter-out 0,$(TEST_WORKERS)),-n $(TEST_WORKERS) --dist loadgroup)

.PHONY: study test test-fast lint install report clean-run notebook
.DELETE_ON_ERROR:

study: $(RUN)/report.md

install: $(INSTALLED)

$(VENV)/.installed: pyproject.toml
	@command -v uv >/dev/null 2>&1 || $(PYTHON) -m pip install -q --user uv >/dev/null 2>&1 || $(PYTHON) -m pip install -q uv >/dev/null 2>&1 || true
	@if command -v uv >/dev/null 2>&1 || [ -x "$$HOME/.local/bin/uv" ]; then \
	  UV=$$(command -v uv || echo $$HOME/.local/bin/uv); \
	  $$UV venv -q --allow-existing -p $(PYTHON) $(VENV) && $$UV pip install -q --compile-bytecode -p $(VENV) -e ".[dev]"; \
	else \
	  $(PYTHON) -m venv $(VENV) && $(VENV)/bin/pip install -q -e ".[dev]" && \
	  $(VENV)/bin/python -m compileall -q -j 0 $(VENV)/lib >/dev/null; \
	fi
	@touch $@

# The chains' targets: RUN.mk, remade when the config changes.
ifneq ($(filter study report $(RUN)/%,$(or $(MAKECMDGOALS),study)),)
-include $(RUN).mk
endif
ifneq ($(JOBS),)
MAKEFLAGS += -j$(JOBS)
endif

$(RUN).mk: $(CONFIG) | $(INSTALLED)
	@mkdir -p $(dir $@)
	@$(CD) chains $(CONFIG) --run-dir $(RUN) --make > $@.tmp && mv $@.tmp $@

# A changed config is refused here, with the keys that differ and what to do.
$(RUN)/config.yaml: $(CONFIG) | $(INSTALLED)
	$(CD) init $(CONFIG) --run-dir $(RUN) --wait
	@touch $@

# Every chain done: `run` finds every stage on disk and writes metrics.jsonl.
$(RUN)/metrics.jsonl: $(CHAIN_TARGETS) | $(RUN)/config.yaml
	$(CD) run $(CONFIG) --run-dir $(RUN) --no-report --wait

$(RUN)/report.md: $(RUN)/metrics.jsonl
	$(CD) report $(RUN)

report: $(RUN)/report.md

# The analysis notebook in JupyterLab (installs the optional `notebook` extra on first use).
notebook: | $(INSTALLED)
	@$(VENV)/bin/python -c "import jupyterlab" 2>/dev/null || { \
	  UV=$$(command -v uv || echo $$HOME/.local/bin/uv); \
	  if [ -x "$$UV" ]; then $$UV pip install -q -p $(VENV) -e ".[notebook]"; \
	  else $(VENV)/bin/pip install -q -e ".[notebook]"; fi; }
	$(VENV)/bin/jupyter lab notebooks/analysis.ipynb

test: | $(INSTALLED)
	$(PYTEST) $(PYTEST_ARGS)

test-fast: | $(INSTALLED)
	$(PYTEST) -m "not slow" $(PYTEST_ARGS)

lint: | $(INSTALLED)
	$(VENV)/bin/ruff check .

clean-run:
	rm -rf $(RUN) $(RUN).mk
