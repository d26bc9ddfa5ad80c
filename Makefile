# Two commands for a fresh Debian or Ubuntu machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTANCE ?= instance
export PLATFORMA_CONFIG ?= $(INSTANCE)/gmina.toml

.PHONY: demo test install install-test assets translations clean-instance

$(BIN)/platforma: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $(BIN)/platforma

install: $(BIN)/platforma

$(VENV)/.test-extras: $(BIN)/platforma
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(VENV)/.test-extras

install-test: $(VENV)/.test-extras

demo: install
	@test -f $(INSTANCE)/gmina.toml || $(BIN)/platforma init --instance $(INSTANCE) --demo
	$(BIN)/platforma db upgrade
	$(BIN)/platforma demo load
	@$(BIN)/platforma demo logins
	$(BIN)/platforma serve --host 127.0.0.1 --port 5000

test: install-test
	$(BIN)/python -m pytest -n 2 -p no:cacheprovider $(PYTEST_ARGS)

# Developers only: rebuild the committed CSS/fonts from assets/ (needs Node and npm).
assets:
	bash assets/build.sh

translations: install
	bash scripts/update_translations.sh

clean-instance:
	rm -rf $(INSTANCE)
