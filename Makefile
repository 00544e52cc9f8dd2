# The two commands a new user needs: `make demo` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.8

.PHONY: install frontend demo test lint format clean

$(BIN)/uv:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet uv==$(UV_VERSION)

$(VENV)/.synced: $(BIN)/uv pyproject.toml uv.lock
	$(BIN)/uv sync --locked --quiet
	touch $@

install: $(VENV)/.synced

frontend: install
	$(MAKE) -C frontend

# The development key and settings: only where DEBUG is asked for, as here.
demo test: export DEBUG ?= true

demo: install frontend
	$(BIN)/python manage.py migrate --no-input
	$(BIN)/python manage.py collectstatic --no-input --verbosity 0
	$(BIN)/python manage.py seed_demo
	@echo "Responder: http://127.0.0.1:$${PORT:-8000}/ (admin: /admin/). Ctrl-C stops everything."
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m responder.embedded_redis -- \
		$(BIN)/honcho start -p $${PORT:-8000}

test: install frontend
	$(BIN)/python -m responder.embedded_redis -- $(BIN)/pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) frontend/node_modules staticfiles media .pytest_cache
