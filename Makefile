# The one entry point. Every target creates .venv on first use and reinstalls only when
# pyproject.toml changes, so a second run starts in seconds.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench soak load clean help

help:
	@echo "make demo   - set up, load the demo district on SQLite and serve http://127.0.0.1:5000"
	@echo "make test   - set up and run the whole test suite (PYTEST_WORKERS=2 processes)"
	@echo "make lint   - ruff"
	@echo "make bench  - the sync benchmark (JSON lines); BENCH_ARGS=--quick for a short run"
	@echo "make load   - the end-of-day burst (S6) on PostgreSQL (LOAD_DB=postgresql+psycopg://...)"
	@echo "make soak   - chaos schedules on the real server and SDK; SOAK_ARGS=--schedules 10000"

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,encrypt]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/linli demo

# Two pytest workers (one per core); a test file stays on one worker. PYTEST_WORKERS=0: serial.
PYTEST_WORKERS ?= 2
test: $(STAMP)
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(STAMP)
	$(BIN)/python -m linli.bench $(BENCH_ARGS)

# The end-of-day burst (S6) against gunicorn on PostgreSQL. LOAD_DB names a PostgreSQL server;
# the benchmark creates and drops its own database there.
LOAD_DB ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
load: $(STAMP)
	LINLI_DATABASE_URL=$(LOAD_DB) $(BIN)/python -m linli.bench --scenario S6 $(BENCH_ARGS)

clean:
	rm -rf $(VENV) instance .pytest_cache .hypothesis

soak: $(STAMP)
	$(BIN)/python -m linli.soak $(SOAK_ARGS)
