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

demo: install frontend system-demo
	$(BIN)/python manage.py migrate --no-input
	$(BIN)/python manage.py collectstatic --no-input --verbosity 0
	$(BIN)/python manage.py seed_demo
	@echo "Responder: http://127.0.0.1:$${PORT:-8000}/ (admin: /admin/). Ctrl-C stops everything."
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m responder.embedded_redis -- \
		$(BIN)/honcho start -p $${PORT:-8000}

# The production layout on this machine: nginx (self-signed TLS), gunicorn, two daphnes,
# workers per queue, beat; DEBUG off (deploy/prod.py). PORT sets the HTTPS port (8443).
prod: install frontend system-prod
	$(BIN)/python -m responder.embedded_redis -- $(BIN)/python deploy/prod.py

test: install frontend system-test
	$(BIN)/python -m responder.embedded_redis -- $(BIN)/pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) frontend/node_modules staticfiles media .pytest_cache
