# The two commands of the README: `make demo` and `make test`. Both create .venv
# when it is missing, install the project into it, then run.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER := 0
export RAY_USAGE_STATS_ENABLED := 0
export TF_CPP_MIN_LOG_LEVEL := 2
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: demo test test-fast lint bench docs install clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check uv
	$(VENV)/bin/uv pip install --quiet --compile-bytecode --python $(PY) -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/bandit-tune demo

# Two pytest workers (pytest-xdist), the slow tests handed out first (conftest.py):
# on an idle 2-core machine the suite takes 13.5-14 min in two workers (658 tests);
# a loaded or slower machine takes up to twice that.
test: $(STAMP)
	$(PY) -m pytest -q -n 2

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not ray"

lint: $(STAMP)
	$(VENV)/bin/ruff check bandit_tune tests examples benchmarks

bench: $(STAMP)
	$(PY) benchmarks/decision_latency.py
	$(PY) benchmarks/peers.py --seeds 0 1 2
	$(PY) benchmarks/budget_check.py --budget 60s
	$(PY) benchmarks/cluster_scale.py
	$(PY) benchmarks/controller.py --arms 300

docs: $(STAMP)
	$(VENV)/bin/mkdocs build --strict

clean:
	rm -rf $(VENV) .pytest_cache build site *.egg-info
