# OpenAisle — the two commands: `make demo` and `make test`.
PYTHON ?= python3
PIP ?= $(PYTHON) -m pip
HOST ?= 127.0.0.1
PORT ?= 8000
STRIPE_PORT ?= 8420
export PYTHONPATH := $(CURDIR):$(CURDIR)/platform

# Tests run on the real services: PostgreSQL and Redis on this machine unless told otherwise.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/openaisle
TEST_REDIS_URL ?= redis://127.0.0.1:6379/0

.PHONY: install system-packages demo serve test lint typecheck pytest bench

install:
	$(PIP) install --quiet -e '.[dev]'

system-packages:
	bash deploy/install-system-packages.sh

# One line per phase on the terminal; pip's and the demo's details in var/demo.log. pip runs only when something
# pyproject.toml asks for is missing (resolving a complete environment takes a minute on a busy machine).
demo:
	@mkdir -p var && started=$$(date +%s) && \
	if $(PYTHON) deploy/requirements_met.py --extra dev >var/demo.log 2>&1; then \
		echo "· install  everything pyproject.toml asks for is installed  ($$(( $$(date +%s) - started )) s)"; \
	else \
		$(PIP) install --quiet -e '.[dev]' >>var/demo.log 2>&1 || { tail -n 20 var/demo.log; exit 1; }; \
		echo "· install  pip install -e '.[dev]'  ($$(( $$(date +%s) - started )) s)"; \
	fi
	@PUBLIC_BASE_URL=$${PUBLIC_BASE_URL:-http://$(HOST):$(PORT)} \
		$(PYTHON) manage.py demo --serve $(HOST):$(PORT) --stripe-port $(STRIPE_PORT)

lint:
	ruff check .
	ruff format --check .

typecheck:
	mypy

pytest:
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} REDIS_URL=$${REDIS_URL:-$(TEST_REDIS_URL)} \
		$(PYTHON) -m pytest $(PYTEST_ARGS)

test: install lint typecheck pytest
