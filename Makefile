# ritm_qgis: every target installs what it needs first (scripts/bootstrap.sh, idempotent).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
SHARED_DATA ?= ../shared/data
OUT ?= out
export QT_QPA_PLATFORM ?= offscreen

.PHONY: setup demo test package bench clean try-desktop

setup:
	@bash scripts/bootstrap.sh

## demo: the main job on bundled defaults (for now: Table 1 + Figure 1 of the paper from the authors' IoU arrays)
demo: setup
	@bash scripts/demo.sh "$(SHARED_DATA)" "$(OUT)/demo"

## test: the import layers (lint-imports, contracts in pyproject.toml), then the whole test suite in
## real QGIS, canvas tests included, in one pytest process; pytest's "no tests collected" (exit 5)
## is reported and counts as success.
test: setup
	@$(VENV)/bin/lint-imports --no-cache | sed -n '/^Contracts: /p; /BROKEN/,$$p'; test $${PIPESTATUS[0]} -eq 0
	@set +e; $(PY) -m pytest -q $(PYTEST_ARGS); r=$$?; \
	if [ $$r -eq 5 ]; then echo "make test: pytest collected no tests (exit 5), nothing failed"; r=0; fi; \
	exit $$r

package: setup
	@bash scripts/package_plugin.sh

## try-desktop: the plugin in the real QGIS desktop under Xvfb, as a new user (scripts/try_desktop.py)
try-desktop:
	@python3 scripts/try_desktop.py --shots docs/models

bench: setup
	@for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf build dist $(OUT) .pytest_cache
