# Two commands do everything on a fresh machine:
#   make run   installs into .venv, prepares the embedded default and runs web, worker and beat
#   make test  installs into .venv and runs ruff, mypy and the whole suite, on the
#              embedded default and again on PostgreSQL + Redis, then the real-worker
#              integration tests a third time with RabbitMQ as the broker
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
MANAGE := $(BIN)/python manage.py
HOST ?= 127.0.0.1
PORT ?= 8000

# The second test pass: a real PostgreSQL and Redis (started by .ci/services.sh).
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/vsm
TEST_REDIS_URL ?= redis://127.0.0.1:6379/0
# The third pass: the real-worker integration tests with RabbitMQ as the broker, in a vhost
# of their own that .ci/rabbitmq-vhost.sh empties first (TEST_AMQP_VHOST= to leave the
# broker as it is, for a TEST_AMQP_URL elsewhere).
TEST_AMQP_VHOST ?= vsm_test
TEST_AMQP_URL ?= amqp://guest:guest@127.0.0.1:5672/$(TEST_AMQP_VHOST)
PYTEST_ARGS ?=

.PHONY: help install run test check test-embedded test-services test-rabbitmq lint bench clean

help:
	@echo "make run    install, migrate, bootstrap, then web + worker + beat on http://$(HOST):$(PORT)/ (embedded default)"
	@echo "make test   ruff + mypy + the whole suite on SQLite and on PostgreSQL/Redis,"
	@echo "            then the real-worker integration tests with RabbitMQ as the broker"
	@echo "make check  ruff + mypy only;  make test-embedded  the suite on the embedded default only"
	@echo "make test-services  the PostgreSQL/Redis pass only;  make test-rabbitmq  the RabbitMQ pass only"

install: $(BIN)/.installed

$(BIN)/.installed: requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "Python 3.11 is required (found " + sys.version.split()[0] + "); set PYTHON=/path/to/python3.11")'
	@echo "==> installing dependencies into $(VENV)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --upgrade pip
	@$(BIN)/python -m pip install --quiet -r requirements.txt
	@touch $@

run: install
	@echo "==> preparing the embedded default (SQLite and broker under var/)"
	@$(MANAGE) migrate --no-input -v 0
	@$(MANAGE) org_bootstrap
	@$(MANAGE) beat_sync
	@$(MANAGE) operator_create
	@echo "==> serving http://$(HOST):$(PORT)/admin/ with a Celery worker and beat (Ctrl-C stops all)"
	@$(MANAGE) devstack --host $(HOST) --port $(PORT)

check: install
	@echo "==> ruff"
	@$(BIN)/ruff check .
	@$(BIN)/ruff format --check .
	@echo "==> mypy"
	@$(BIN)/mypy .
	@echo "==> migrations match the models"
	@VSM_VAR_DIR=$(CURDIR)/var/test $(MANAGE) makemigrations --check --dry-run -v 1

test-embedded: install
	@echo "==> tests on the embedded default (SQLite, embedded broker, in-memory channel layer)"
	@env -u DATABASE_URL -u REDIS_URL -u CELERY_BROKER_URL VSM_VAR_DIR=$(CURDIR)/var/test \
		$(BIN)/python -m pytest $(PYTEST_ARGS) --ignore=tests/integration
	@echo "==> real-worker integration tests on the embedded default (a process of their own)"
	@env -u DATABASE_URL -u REDIS_URL -u CELERY_BROKER_URL VSM_VAR_DIR=$(CURDIR)/var/test \
		$(BIN)/python -m pytest $(PYTEST_ARGS) tests/integration

test-services: install
	@bash .ci/services.sh postgresql redis
	@echo "==> tests on PostgreSQL and Redis"
	@env -u CELERY_BROKER_URL VSM_VAR_DIR=$(CURDIR)/var/test-services \
		DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) \
		$(BIN)/python -m pytest $(PYTEST_ARGS) --ignore=tests/integration
	@echo "==> real-worker integration tests on PostgreSQL and Redis (a process of their own)"
	@env -u CELERY_BROKER_URL VSM_VAR_DIR=$(CURDIR)/var/test-services \
		DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) \
		$(BIN)/python -m pytest $(PYTEST_ARGS) tests/integration

# Where RabbitMQ is not installed and cannot be started, the pass is skipped and says so,
# unless VSM_REQUIRE_RABBITMQ is set (.ci/run sets it: CI has RabbitMQ, so it fails there).
test-rabbitmq: install
	@bash .ci/services.sh postgresql
	@if ! bash .ci/services.sh rabbitmq; then \
		if [ -n "$${VSM_REQUIRE_RABBITMQ:-}" ]; then \
			echo "ERROR: RabbitMQ is required (VSM_REQUIRE_RABBITMQ) and does not answer" >&2; exit 1; \
		fi; \
		echo "==> SKIPPED: the RabbitMQ pass (RabbitMQ cannot be started here; see above)"; \
	else \
		if [ -n "$(TEST_AMQP_VHOST)" ]; then bash .ci/rabbitmq-vhost.sh "$(TEST_AMQP_VHOST)"; fi && \
		echo "==> real-worker integration tests with RabbitMQ as the broker (PostgreSQL, no Redis)" && \
		env -u REDIS_URL VSM_VAR_DIR=$(CURDIR)/var/test-rabbitmq CELERY_BROKER_URL=$(TEST_AMQP_URL) \
			DATABASE_URL=$(TEST_DATABASE_URL) $(BIN)/python -m pytest $(PYTEST_ARGS) tests/integration; \
	fi

test: check test-embedded test-services test-rabbitmq
	@echo "==> all checks and the three test passes succeeded"

clean:
	rm -rf var/test var/test-services var/test-rabbitmq .pytest_cache .mypy_cache .ruff_cache
