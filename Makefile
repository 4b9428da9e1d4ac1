# OpenAisle — the two commands: `make demo` and `make test`.
PYTHON ?= python3
PIP ?= $(PYTHON) -m pip
HOST ?= 127.0.0.1
PORT ?= 8000
export PYTHONPATH := $(CURDIR):$(CURDIR)/platform

# Tests run on the real services: PostgreSQL and Redis on this machine unless told otherwise.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/openaisle
TEST_REDIS_URL ?= redis://127.0.0.1:6379/0

.PHONY: install system-packages demo serve test lint typecheck pytest bench

install:
	$(PIP) install --quiet -e '.[dev]'

system-packages:
	bash deploy/install-system-packages.sh

demo: install
	$(PYTHON) manage.py migrate --no-input -v0
	@echo "Serving on http://$(HOST):$(PORT)/ once the demo is ready (Ctrl-C to stop)"
	PUBLIC_BASE_URL=$${PUBLIC_BASE_URL:-http://$(HOST):$(PORT)} $(PYTHON) manage.py demo --serve $(HOST):$(PORT)

lint:
	ruff check .
	ruff format --check .

typecheck:
	mypy

pytest:
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} REDIS_URL=$${REDIS_URL:-$(TEST_REDIS_URL)} \
		$(PYTHON) -m pytest $(PYTEST_ARGS)

test: install lint typecheck pytest
