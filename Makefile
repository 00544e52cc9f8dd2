# The two commands a new user needs: `make demo` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.8

.PHONY: install frontend system-test system-demo system-prod demo prod test lint format clean

$(BIN)/uv:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet uv==$(UV_VERSION)

$(VENV)/.synced: $(BIN)/uv pyproject.toml uv.lock
	$(BIN)/uv sync --locked --quiet
	touch $@

install: $(VENV)/.synced

frontend: install
	$(MAKE) -C frontend

# System packages (Chromium, GStreamer's RTSP server): installed once through apt, or one
# line naming the command to run. bin/system-packages is the one list.
system-test:
	bin/system-packages test

system-demo:
	bin/system-packages demo

system-prod:
	bin/system-packages prod

# The development key and settings: only where DEBUG is asked for, as here.
demo test: export DEBUG ?= true
# Bytecode cached as Python does by default: where the environment says not to (this
# machine's containers set PYTHONDONTWRITEBYTECODE), every daphne, worker and recorder a
# test starts would compile Django and the rest from source again, seconds each.
test: export PYTHONDONTWRITEBYTECODE :=

demo: install frontend system-demo
	$(BIN)/python manage.py migrate --no-input
	$(BIN)/python manage.py collectstatic --no-input --verbosity 0
	$(BIN)/python manage.py seed_demo --verbosity 0
	@# The Procfile's processes log to logs/<name>.log; the sign-in block stays on screen.
	@PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m responder.demo.run

# The production layout on this machine: nginx (self-signed TLS), gunicorn, two daphnes,
# workers per queue, beat; DEBUG off (deploy/prod.py). PORT sets the HTTPS port (8443).
prod: install frontend system-prod
	$(BIN)/python -m responder.embedded_redis -- $(BIN)/python deploy/prod.py

# Two pytest-xdist workers, each with its own test database and Redis database
# (tests/conftest.py): most of the suite waits on servers it started, so two at once use
# the 2 cores a single run leaves half idle. A file's tests stay on one worker (their
# module fixtures start once). The 30 slowest are named at the end: the suite must stay
# within 15 minutes.
TEST_WORKERS ?= 2
test: install frontend system-test
	$(BIN)/python -m responder.embedded_redis -- $(BIN)/pytest -n $(TEST_WORKERS) \
	  --dist loadfile --durations=30 $(PYTEST_ARGS)

# lint-imports: the layers of docs/ARCHITECTURE.md (pyproject.toml's importlinter contracts).
# Types: mypy over the apps with Django's and DRF's stubs (settings load as in development).
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	DJANGO_SETTINGS_MODULE=responder.settings DEBUG=true $(BIN)/mypy

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) frontend/node_modules staticfiles media .pytest_cache
