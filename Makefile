# The README's two commands are `make demo` and `make test`; .ci/run calls `make test`.
PY ?= python3
export PYTHONUNBUFFERED := 1
export PIP_ROOT_USER_ACTION := ignore

.PHONY: install system-deps export-check lint typecheck nbtest pytest test demo

system-deps:  ## Debian packages the suite needs (Chromium for the docs browser test)
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

install: system-deps  ## the package with every extra, the pinned nbdev toolchain, Kafka jars and npm docs tools
	$(PY) -m pip install -q -e ".[dev,avro]"
	fastkafka testing install_deps
	fastkafka docs install_deps

export-check:  ## the committed package must be exactly what the notebooks export
	nbdev_export
	@if [ -n "$$(git status --porcelain -- fastkafka)" ]; then \
	  echo "nbdev_export changed fastkafka/: the package and nbs/ disagree:"; git status --porcelain -- fastkafka; exit 1; fi

lint:
	nbqa ruff nbs

typecheck:
	mypy fastkafka

nbtest:
	nbdev_test --n_workers 2

pytest:
	$(PY) -m pytest

test: install export-check lint typecheck nbtest pytest  ## everything CI runs; ends with pytest's summary line

demo: install  ## runs the README example app end to end on a real local broker
	$(PY) examples/demo.py
