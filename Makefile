# The README's two commands are `make demo` and `make test`; .ci/run calls `make test`.
PY ?= python3
export PYTHONUNBUFFERED := 1
export PIP_ROOT_USER_ACTION := ignore

.PHONY: install system-deps export-check lint typecheck nbtest pytest test demo

system-deps:  ## Debian packages the suite needs (Chromium for the docs browser test)
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

install: system-deps  ## the package with every extra (avro, librdkafka, docs, metrics, otel), the pinned nbdev toolchain, Kafka jars and npm docs tools
	$(PY) -m pip install -q -e ".[dev,avro,librdkafka,docs,metrics,otel]"
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

# The other Python versions setup.py declares (3.11 is the one above): for each, a venv outside the repo with the
# test and dev extras, then the notebooks' tests (no broker cells) and the in-memory pytest suite.
.PHONY: pythons
PYTHONS ?= 3.10.13 3.12.1 3.13.0
PYENV_ROOT ?= $(HOME)/.pyenv
PYTHONS_VENVS ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/fastkafka/venvs

pythons:  ## nbdev_test and `pytest -m "not broker and not subprocess"` on each of $(PYTHONS)
	@set -e; for v in $(PYTHONS); do \
	  py=$(PYENV_ROOT)/versions/$$v/bin/python; venv=$(PYTHONS_VENVS)/$$v; start=$$(date +%s); \
	  [ -x $$py ] || { echo "Python $$v is not installed at $$py: run 'pyenv install $$v'"; exit 1; }; \
	  echo "=== Python $$v ($$venv)"; \
	  [ -x $$venv/bin/python ] || $$py -m venv $$venv; \
	  $$venv/bin/python -m pip install -q -e ".[test,dev,librdkafka,metrics,otel]"; \
	  PATH=$$venv/bin:$$PATH nbdev_test --n_workers 2; \
	  PATH=$$venv/bin:$$PATH python -m pytest -q -p no:cacheprovider -m "not broker and not subprocess" \
	    --ignore=tests/test_notebooks_in_kernel.py; \
	  echo "=== Python $$v passed in $$(( $$(date +%s) - start )) s"; \
	done

test: install export-check lint typecheck nbtest pythons pytest  ## everything CI runs; ends with pytest's summary line

demo: install  ## runs the README example app end to end on a real local broker
	$(PY) examples/demo.py

# The reference site. With Quarto on PATH, nbdev's own `nbdev_docs` (nbs/_quarto.yml, writes _docs/); without it
# (these machines), docs_build/build_site.py: nbdev's processing into _proc/, the notebooks run like nbdev_test (flagged
# cells not run), MkDocs + mkdocs-jupyter into build/docs/site/ with the nav of nbs/sidebar.yml.
.PHONY: docs docs-serve docs-proc
DOCS_PORT ?= 8000

docs:  ## the reference site: build/docs/site/ (or _docs/ with Quarto)
	@if command -v quarto >/dev/null 2>&1; then $(PY) docs_build/sidebar_nav.py && nbdev_docs; \
	else $(PY) docs_build/build_site.py; fi

docs-serve:  ## serves the site `make docs` built (building it first if there is none) on http://127.0.0.1:$(DOCS_PORT)/
	@if command -v quarto >/dev/null 2>&1; then d=_docs; else d=build/docs/site; fi; \
	[ -f $$d/index.html ] || $(MAKE) docs; \
	echo "Serving $$d on http://127.0.0.1:$(DOCS_PORT)/"; $(PY) -m http.server $(DOCS_PORT) --bind 127.0.0.1 --directory $$d

docs-proc:  ## nbdev's docs processing (nbdev_proc_nbs without its Quarto installer) must pass on every notebook
	$(PY) docs_build/nbproc.py
