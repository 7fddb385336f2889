# Kiln: `make run` starts everything on an embedded default; `make test` runs the suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
STAMP := $(VENV)/.installed
# axe-core (npm) for the browser tests' accessibility checks (tests/e2e/axe.py).
AXE_VERSION := 4.14.1
AXE := $(VENV)/axe/node_modules/axe-core/axe.min.js

.PHONY: run test test-fast lint faults bench soak rehearsal clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -c 'import sys; assert sys.version_info >= (3, 12), "Kiln needs Python 3.12+ (see .python-version)"'
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# Without npm the accessibility checks are skipped (tests/e2e/axe.py says so), except in CI, where they fail.
$(AXE):
	@if command -v npm >/dev/null 2>&1; then \
	  npm install --prefix $(VENV)/axe --no-audit --no-fund --silent axe-core@$(AXE_VERSION); \
	else echo "npm not found: the browser tests' accessibility checks will be skipped (apt-get install npm)"; fi

install: $(STAMP) $(AXE)

run: $(STAMP)
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	$(BIN)/python manage.py demo
	@# exec: make's SIGTERM (kill <pid of make>) then reaches runkiln, not a shell that would leave it running.
	PORT=$(PORT) exec $(BIN)/python manage.py runkiln

test: $(STAMP) $(AXE)
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

faults: $(STAMP)
	$(BIN)/pytest -m faults -p no:randomly $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python bench/run.py $(BENCH_ARGS)

# The embedded default left up and used (30 minutes; SOAK_ARGS="--minutes 1 --jobs 60 --members 10" in CI).
soak: $(STAMP)
	$(BIN)/python bench/soak.py $(SOAK_ARGS)

# Several hosts on one machine (PostgreSQL, Redis, a moto S3 server; docs/deploy/systemd's units):
# 1,000 jobs, each kind of process SIGKILLed mid-run. REHEARSAL_ARGS="--jobs 200 --db kiln_x --redis redis://127.0.0.1:6379/3".
rehearsal: $(STAMP)
	$(BIN)/python bench/rehearsal.py $(REHEARSAL_ARGS)

clean:
	rm -rf $(VENV) var
