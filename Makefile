# make test : fresh machine -> virtualenv, package + test extras, mosquitto, whole suite
# make demo : fresh machine -> install, init the default consortium, run the demo
# make test-deep : the long property-test profile (not part of CI)
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install mosquitto chromium test test-deep demo lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

# mosquitto from Debian's packages, for the broker tests (installed only as root).
mosquitto:
	@if command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing mosquitto from Debian's packages"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto >/dev/null; \
	else echo "mosquitto is missing and we are not root: mosquitto broker tests will be skipped"; fi

# Debian's chromium, for the report's browser test (Playwright drives this system browser; it
# downloads none). Installed only as root, like mosquitto; without it that test is skipped.
chromium:
	@if command -v chromium >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing chromium from Debian's packages"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else echo "chromium is missing and we are not root: the report's browser test will be skipped"; fi

test: install mosquitto chromium
	$(BIN)/pytest -q -n 2 --dist loadgroup

test-deep: install mosquitto chromium
	HYPOTHESIS_PROFILE=deep $(BIN)/pytest -q -m "slow or not slow"

lint: install
	$(BIN)/ruff check consortium tests
	$(BIN)/mypy consortium
	$(BIN)/lint-imports

# the default consortium (7 validators) on the embedded broker, the flagship scenario live
demo: install
	$(BIN)/consortium demo

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
