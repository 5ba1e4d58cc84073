# One command runs every gate: `make check` (format check, lint, types, tests).
PY ?= .venv/bin/python

.PHONY: check format-check lint types test format

check: format-check lint types test

format-check:
	$(PY) -m ruff format --check scripts tests

lint:
	$(PY) -m ruff check scripts tests

types:
	$(PY) -m mypy

test:
	$(PY) -m pytest -q -p no:cacheprovider --durations=15

format:
	$(PY) -m ruff format scripts tests
	$(PY) -m ruff check --fix scripts tests
