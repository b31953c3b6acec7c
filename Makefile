# ritm_qgis: every target installs what it needs first (scripts/bootstrap.sh, idempotent).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
SHARED_DATA ?= ../shared/data
OUT ?= out
export QT_QPA_PLATFORM ?= offscreen

.PHONY: setup demo test package zip bench clean try-desktop
RELEASE ?= release.toml

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

## package: the plugin zip, then whether plugins.qgis.org would take it (qgis-plugin-ci and the repository's
## upload rules, scripts/release_check.py); fails, naming each setting, while release.toml lacks an address
package: zip
	@$(PY) scripts/release_check.py check "$(RELEASE)" build/plugin \
		"dist/ritm_qgis.$$(sed -n 's/^version=//p' metadata.txt).zip"

## zip: the plugin zip alone (dist/ritm_qgis.<version>.zip), for installing from a file
zip: setup
	@RELEASE="$(RELEASE)" bash scripts/package_plugin.sh

## try-desktop: the plugin in the real QGIS desktop under Xvfb, as a new user (scripts/try_desktop.py)
try-desktop:
	@python3 scripts/try_desktop.py --shots docs/models

bench: setup
	@for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf build dist $(OUT) .pytest_cache
