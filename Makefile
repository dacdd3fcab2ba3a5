# Two commands set everything up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
FLASK := $(BIN)/flask

.PHONY: run worker beat test setup install lint-imports bench clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# Migrate the embedded database, deploy every process in bpmn/, load demo data if empty.
setup: install
	$(FLASK) db upgrade
	$(FLASK) deploy --all
	$(FLASK) demo load

run: setup
	LIANQING_START_SWEEPER=1 $(FLASK) run --host 127.0.0.1 --port 5000 --no-reload

# Scale-out (README "Scale-out"): Celery workers and the one beat, on Redis (LIANQING_BROKER_URL);
# run the web with LIANQING_JOB_BACKEND=celery.  `make run` keeps the in-process default.
worker: install
	$(BIN)/celery -A workflows.worker worker --loglevel=INFO

beat: install
	$(BIN)/celery -A workflows.worker beat --loglevel=INFO --schedule instance/celerybeat-schedule

lint-imports: install
	$(BIN)/lint-imports

test: setup lint-imports
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python bench/engine_throughput.py

clean:
	rm -rf $(VENV) instance/*.db instance/*.db-* .pytest_cache
