# Two commands set everything up on a fresh machine (Python 3.11+ and make present):
#   make demo   run today's pipeline on the embedded defaults and print a summary
#   make test   run the whole test suite
# and `make dev` opens the Dagster UI on the same defaults.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test dev install clean-db bench

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/ws-tracker demo

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

dev: $(STAMP)
	$(BIN)/ws-tracker dev

clean-db: $(STAMP)
	$(BIN)/ws-tracker db stop
	rm -rf .ws_tracker
