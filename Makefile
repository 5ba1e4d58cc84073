# One command runs every gate: `make check` (format check, lint, types, tests).
PY ?= .venv/bin/python

.PHONY: check format-check lint types test format wheels-check

check: format-check lint types test

format-check:
	$(PY) -m ruff format --check scripts tests bench

lint:
	$(PY) -m ruff check scripts tests bench

types:
	$(PY) -m mypy

test:
	$(PY) -m pytest -q -p no:cacheprovider --durations=25 -n 2

format:
	$(PY) -m ruff format scripts tests bench
	$(PY) -m ruff check --fix scripts tests bench

# Every runtime dependency has manylinux wheels for linux/amd64 and linux/arm64 (asks PyPI).
wheels-check:
	$(PY) -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/chaintape-requirements.txt
	for arch in x86_64 aarch64; do \
	  $(PY) -m pip download -q --only-binary=:all: --platform manylinux2014_$$arch \
	    --platform manylinux_2_17_$$arch --platform manylinux_2_28_$$arch \
	    --python-version 3.13 --implementation cp -d /tmp/chaintape-wheels-$$arch \
	    -r /tmp/chaintape-requirements.txt || exit 1; \
	  echo "linux/$$arch: $$(ls /tmp/chaintape-wheels-$$arch | wc -l) wheels, nothing to compile"; \
	done
