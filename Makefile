# One command to run everything on the embedded default, one to test on PostgreSQL.
PYTHON ?= PYENV_VERSION=3.12.1 python3.12
VENV ?= .venv
BIN := $(VENV)/bin
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/missioncontrol
TEST_BROKER_URL ?= redis://127.0.0.1:6379/15
# The real-worker tests run on TEST_BROKER_URL (Redis) and again on RabbitMQ, in this vhost.
TEST_RABBITMQ_VHOST ?= mc_test
TEST_RABBITMQ_URL ?= amqp://guest:guest@127.0.0.1:5672/$(TEST_RABBITMQ_VHOST)
PYTEST_ARGS ?=

.PHONY: install run lint test bench soak clean

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

install: $(BIN)/.installed

# Web, worker and beat on SQLite with a broker that needs no server, demo data loaded.
# The processes share one Prometheus multiprocess directory, wiped here first.
METRICS_DIR ?= var/prometheus
run: install
	DEBUG=1 $(BIN)/python manage.py migrate --noinput
	DEBUG=1 $(BIN)/python manage.py demo
	rm -rf $(METRICS_DIR) && mkdir -p $(METRICS_DIR)
	DEBUG=1 PROMETHEUS_MULTIPROC_DIR=$(abspath $(METRICS_DIR)) PATH="$(abspath $(BIN)):$$PATH" \
		$(BIN)/honcho start -f Procfile

# ruff (lint, then the format left as it is) and mypy with the Django and DRF
# plugins; configured in pyproject.toml ([tool.ruff], [tool.mypy]). No services needed.
LINT_PATHS := planning retries missioncontrol tests bench
lint: install
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/mypy

# .ci/services.sh first starts whichever of PostgreSQL, Redis and RabbitMQ is down
# (and installs Debian's chromium); then the import contracts (pyproject.toml,
# [tool.importlinter]) and `make lint`; then the whole suite on PostgreSQL in one
# pytest run (two processes; the tests that share a real worker or server in one
# xdist_group), with a real worker on Redis and on RabbitMQ and Chromium where
# tests need them. The test settings (tests/settings.py) pin the rest, so no DEBUG.
test: install
	RABBITMQ_VHOST=$(TEST_RABBITMQ_VHOST) .ci/services.sh
	$(BIN)/lint-imports
	$(MAKE) --no-print-directory lint
	DATABASE_URL=$(TEST_DATABASE_URL) CELERY_BROKER_URL=$(TEST_BROKER_URL) TEST_RABBITMQ_URL=$(TEST_RABBITMQ_URL) \
		$(BIN)/python -m pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

# Benchmarks on loopback against PostgreSQL (databases mc_bench_run_*, made and
# dropped by the run) and Redis db 6; writes the table to docs/performance.md.
# Single reports are also measured with wrk (Debian's package, installed by the
# bench when missing). BENCH_ARGS="--sizes medium" or "--quick" for a shorter
# run; "--deployments --sizes medium" compares gunicorn deployments instead.
BENCH_ARGS ?=
bench: install
	$(BIN)/python -m bench $(BENCH_ARGS)

# A mixed load held through the API; checks invariants, writes docs/reliability.md.
SOAK_ARGS ?= --minutes 5
soak: install
	$(BIN)/python -m bench.soak $(SOAK_ARGS)

clean:
	rm -rf $(VENV) var
