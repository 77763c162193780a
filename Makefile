# collapse-diffusion: the pipeline from file targets.
#   make study                 the default study on the embedded digits data (CPU, minutes)
#   make study CONFIG=configs/mnist.yaml
#   make test                  the test suite (lint included)
#   make test-fast             the suite without the slow end-to-end tests: the edit loop
#   make notebook              the analysis notebook in JupyterLab
# The first target that needs Python creates .venv and installs the package (uv when it is at hand
# or installable, else pip).
PYTHON ?= python3
VENV ?= .venv
CONFIG ?= configs/digits.yaml
RUN ?= runs/$(basename $(notdir $(CONFIG)))
INSTALLED ?= $(VENV)/.installed
CD ?= $(VENV)/bin/collapse-diffusion
PYTEST_ARGS ?=

.PHONY: study test test-fast lint install report clean-run notebook
.DELETE_ON_ERROR:

study: $(RUN)/report.md

install: $(INSTALLED)

$(VENV)/.installed: pyproject.toml
	@command -v uv >/dev/null 2>&1 || $(PYTHON) -m pip install -q --user uv >/dev/null 2>&1 || $(PYTHON) -m pip install -q uv >/dev/null 2>&1 || true
	@if command -v uv >/dev/null 2>&1 || [ -x "$$HOME/.local/bin/uv" ]; then \
	  UV=$$(command -v uv || echo $$HOME/.local/bin/uv); \
	  $$UV venv -q --allow-existing -p $(PYTHON) $(VENV) && $$UV pip install -q -p $(VENV) -e ".[dev]"; \
	else \
	  $(PYTHON) -m venv $(VENV) && $(VENV)/bin/pip install -q -e ".[dev]"; \
	fi
	@touch $@

# The whole study; every stage inside skips what is already on disk, so a killed run resumes.
$(RUN)/metrics.jsonl: $(CONFIG) | $(INSTALLED)
	$(CD) run $(CONFIG) --run-dir $(RUN) --no-report

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
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

test-fast: | $(INSTALLED)
	$(VENV)/bin/python -m pytest -m "not slow" $(PYTEST_ARGS)

lint: | $(INSTALLED)
	$(VENV)/bin/ruff check .

clean-run:
	rm -rf $(RUN)
