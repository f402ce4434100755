# Minsy backend. `make` alone lists the targets. Two commands do it all: `make run`, `make test`.
#
# uv is run as `python3 -m uv`, so a fresh machine without a uv binary on PATH works; .python-version
# (3.12) makes pyenv pick Python 3.12 inside the repository.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
UV := $(PYTHON) -m uv
RUN := $(UV) run --frozen
DATA_DIR ?= $(or $(MINSY_DATA_DIR),var)

.PHONY: help install run test lint format migrate infra stop bench clean-data

help: ## list the targets
	@echo "Minsy backend - make targets:"
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-11s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

install: ## install uv if missing, then the locked dependencies into .venv (uv sync --frozen)
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv
	$(UV) sync --frozen

run: install ## start the whole stack (PostgreSQL, Redis, migrations, MCP, API, workers, beat); Ctrl-C stops it
	$(RUN) minsy up

test: install ## run the test suite (PostgreSQL/Redis: the reachable ones, else embedded)
	$(RUN) pytest

lint: install ## ruff format check, ruff lint, mypy, import boundaries
	$(RUN) ruff format --check .
	$(RUN) ruff check .
	$(RUN) mypy packages
	$(RUN) python scripts/check_import_boundaries.py

format: install ## rewrite the code with ruff format and ruff's safe fixes
	$(RUN) ruff format .
	$(RUN) ruff check --fix .

migrate: install ## create the database if missing and apply Alembic migrations
	$(RUN) minsy migrate

infra: install ## only PostgreSQL and Redis (configured or embedded); prints the URLs, Ctrl-C stops
	$(RUN) minsy infra

stop: install ## stop embedded PostgreSQL/Redis left running in the data folder
	$(RUN) minsy stop

bench: ## install the bench group too, then run the benchmarks
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv
	$(UV) sync --frozen --all-groups
	$(UV) run --frozen --all-groups python -m bench.run

clean-data: stop ## stop embedded servers and delete the local data folder (databases, Redis, schedules)
	rm -rf -- "$(DATA_DIR)"
