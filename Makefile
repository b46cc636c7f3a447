# Two commands: `make run` and `make test`. Each sets up what it needs on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
EMULATOR_PORT ?= 8701
MICROSOFT_GRAPH_PORT ?= 8702
MICROSOFT_IDENTITY_PORT ?= 8703
EXCHANGE_PORT ?= 8704
PORT ?= 8000
# SQLite, the embedded broker, beat's schedule and the emulator CA live here (also read by settings.py).
CALSYNC_VAR_DIR ?= $(CURDIR)/var
export CALSYNC_VAR_DIR
EMULATOR := http://127.0.0.1:$(EMULATOR_PORT)

# Local run: embedded defaults (SQLite, filesystem broker) and the Google emulator.
RUN_ENV := DEBUG=1 \
	OAUTHLIB_INSECURE_TRANSPORT=1 \
	GOOGLE_CLIENT_ID=calsync-local-client GOOGLE_CLIENT_SECRET=calsync-local-secret \
	GOOGLE_AUTH_URI=$(EMULATOR)/o/oauth2/auth GOOGLE_TOKEN_URI=$(EMULATOR)/token \
	GOOGLE_REVOKE_URI=$(EMULATOR)/revoke GOOGLE_API_BASE_URL=$(EMULATOR)/ \
	GOOGLE_BATCH_URI=$(EMULATOR)/batch/calendar/v3 \
	MICROSOFT_CLIENT_ID=calsync-local-microsoft-client MICROSOFT_CLIENT_SECRET=calsync-local-microsoft-secret \
	MICROSOFT_AUTHORITY=https://127.0.0.1:$(MICROSOFT_IDENTITY_PORT)/common \
	MICROSOFT_GRAPH_BASE_URL=http://127.0.0.1:$(MICROSOFT_GRAPH_PORT)/v1.0/ \
	MICROSOFT_CA_BUNDLE=$(CALSYNC_VAR_DIR)/microsoft-emulator-ca.pem \
	EXCHANGE_SERVER_URL=http://127.0.0.1:$(EXCHANGE_PORT)/EWS/Exchange.asmx \
	EXCHANGE_ALLOWED_NETWORKS=127.0.0.0/8,::1/128 \
	CALSYNC_SYNC_INTERVAL_MINUTES=1

.PHONY: run test lint typecheck install install-dev browser fuzz

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt | $(VENV)/bin/python
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(VENV)/bin/python
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.runtime
install-dev: $(VENV)/.dev

# Debian's Chromium for the real-browser tests (Playwright cannot download its own browser here).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "Installing Debian's chromium for browser tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; }

run: $(VENV)/.runtime
	mkdir -p $(CALSYNC_VAR_DIR)
	$(RUN_ENV) $(PY) manage.py migrate --noinput
	$(RUN_ENV) $(PY) manage.py seed_demo
	$(RUN_ENV) $(PY) manage.py run_stack --port $(PORT) --emulator-port $(EMULATOR_PORT) \
		--microsoft-port $(MICROSOFT_GRAPH_PORT) --microsoft-identity-port $(MICROSOFT_IDENTITY_PORT) \
		--exchange-port $(EXCHANGE_PORT)

test: $(VENV)/.dev browser
	mkdir -p $(CALSYNC_VAR_DIR)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

typecheck: $(VENV)/.dev
	$(VENV)/bin/mypy .

# The randomized sync test's long run (issue #12): FUZZ_EXAMPLES sequences per provider, a JSON report.
FUZZ_EXAMPLES ?= 1000
fuzz: $(VENV)/.dev
	mkdir -p $(CALSYNC_VAR_DIR)
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PY) bench/fuzz.py
