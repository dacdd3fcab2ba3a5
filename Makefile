# Two commands set everything up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
FLASK := $(BIN)/flask

.PHONY: run worker beat test setup install lint-imports browser-deps bench bench-deps translations clean

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

# The browser tests (tests/browser) drive Debian's Chromium, with CJK fonts for the screenshots.  Install
# them only when missing and only when apt-get is usable (root, or sudo without a password); otherwise
# those tests skip with the reason (and fail under LIANQING_REQUIRE_SERVICES=1, as in CI).
BROWSER_PACKAGES := chromium fonts-noto-cjk
browser-deps:
	@missing=""; for p in $(BROWSER_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then sudo=""; elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo="sudo -n"; \
	else echo "browser-deps:$$missing missing and apt-get not usable here: the browser tests will be skipped"; exit 0; fi; \
	if ! command -v apt-get >/dev/null; then echo "browser-deps: no apt-get: install Chromium yourself (LIANQING_CHROMIUM=path) or the browser tests skip"; exit 0; fi; \
	echo "installing$$missing"; \
	$$sudo apt-get update -qq && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing

test: setup lint-imports browser-deps
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python bench/engine_throughput.py

# The HTTP load test's extra (locust): bench/load_test.py, docs/reliability.md "Load".
bench-deps: install
	$(BIN)/python -m pip install --quiet -e '.[bench]'

# The UI's catalogues (README "Translating / 翻译"): collect the msgids (Chinese) of web/, merge them into
# web/translations/*/LC_MESSAGES/messages.po (new ones empty or fuzzy: translate them), compile the .mo files.
translations: install
	$(BIN)/pybabel extract -F babel.cfg -k _l --add-location=file --sort-output --project=lianqing \
		-o web/translations/messages.pot .
	$(BIN)/pybabel update -i web/translations/messages.pot -d web/translations --ignore-obsolete
	$(BIN)/pybabel compile -d web/translations --statistics

clean:
	rm -rf $(VENV) instance/*.db instance/*.db-* .pytest_cache
