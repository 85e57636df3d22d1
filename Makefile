# `make demo` and `make test` do all set-up themselves on a fresh Debian/Ubuntu machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DATASET ?= data/stampscenes
RESULTS ?= results

.PHONY: help setup system-packages demo test test-fast lint leaderboard robustness bench api dashboard figures clean-results

help:
	@echo "make demo     set up, build StampScenes, run EDA and the benchmark, print the leaderboard"
	@echo "make test     set up, then run the test suite"
	@echo "make test-fast  the unit tests only (no training, no browser): the inner loop"
	@echo "make figures  render docs/figures.md from the demo's results (what README quotes)"
	@echo "make robustness  score the demo's models under 15 corruptions x 3 severities (~15 min on 2 cores)"
	@echo "make setup    create $(VENV) and install Python and Debian packages"
	@echo "make bench    throughput and quick-preset figures for every family (tens of minutes on 2 cores)"
	@echo "make api      serve every saved model at http://127.0.0.1:8000 (docs at /docs)"
	@echo "make dashboard  open the Streamlit dashboard at http://localhost:8501"

$(VENV)/.installed: requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || { echo "error: $(PYTHON) is Python $$($(PYTHON) -c 'import platform; print(platform.python_version())'); the pinned stack needs 3.11: run PYTHON=python3.11 make $(MAKECMDGOALS)"; exit 2; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@set -o pipefail; $(VENV)/bin/pip install --disable-pip-version-check -q -r requirements.txt 2>&1 | sed "/is ignored: it is neither a file nor a directory/d"
	@$(VENV)/bin/pip install --disable-pip-version-check -q --no-deps --no-build-isolation -e .
	@touch $@

system-packages:
	@bash scripts/install-system-packages.sh

setup: system-packages $(VENV)/.installed

$(DATASET)/dataset.json: | setup
	$(PY) -m benchmarks build-default $(DATASET)

$(DATASET)/eda/report.json: $(DATASET)/dataset.json
	$(PY) -m benchmarks eda $(DATASET)

demo: setup $(DATASET)/dataset.json $(DATASET)/eda/report.json
	$(PY) -m tools.demo --dataset $(DATASET) --results $(RESULTS)
	@echo
	@echo "dataset:      $(DATASET) (labels.csv, dataset.json)"
	@echo "EDA report:   $(DATASET)/eda/report.html and report.json"
	@echo "runs:         $(RESULTS)/<run_id>/ (run.json, predictions.csv, metrics.json)"
	@echo "next:         make dashboard; make api (prediction endpoint); python -m cloud_baselines --help (TM / Vertex / Vision / Roboflow)"

leaderboard: setup
	@$(PY) -m benchmarks leaderboard --dataset $(DATASET) --results $(RESULTS)

# after make demo: the newest run of every model on the dataset, served as the API serves it (OpenVINO where the
# model exports to it); leaderboard, compare, report and dashboard then show robust AUC (docs/evaluation.md)
robustness: setup
	$(PY) -m benchmarks robustness --models-on $(DATASET) --results $(RESULTS) --runtime fastest

dashboard: setup
	RESULTS_DIR=$(RESULTS) $(VENV)/bin/streamlit run streamlit_app.py --server.headless true

# MALLOC_ARENA_MAX=2: glibc's per-thread arenas otherwise grow the server by ~0.4 GB under 8 clients; keep-alive 65 s:
# longer than a 503's Retry-After, so a client that waits as told finds its connection open (docs/api.md)
api: setup
	MALLOC_ARENA_MAX=$${MALLOC_ARENA_MAX:-2} RESULTS_DIR=$(RESULTS) $(VENV)/bin/uvicorn api.app:app --host 127.0.0.1 --port 8000 --timeout-graceful-shutdown 30 --timeout-keep-alive 65

bench: setup $(DATASET)/dataset.json
	$(PY) -m tools.bench --dataset $(DATASET) --results $(RESULTS)

lint: setup
	$(VENV)/bin/ruff check .

test: setup
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q

test-fast: setup
	$(PY) -m pytest -q -m "not training and not browser"

figures: setup
	$(PY) -m benchmarks figures --dataset $(DATASET) --results $(RESULTS)

clean-results:
	rm -rf $(RESULTS)/*/
