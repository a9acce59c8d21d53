# The two commands: `make run` (demo in sandbox mode) and `make test` (the whole suite).
# Settings come from the environment; a .env file (see .env.example) is read when present.
ifneq (,$(wildcard .env))
include .env
export
endif

VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
# `make test` runs the suite in this many pytest-xdist workers, each with its own test database and Redis database
# (see tests/_redis.py); TEST_WORKERS=0 runs it in one process. Three on two cores: the tests wait on PostgreSQL,
# Chromium and real processes part of the time, which a third worker fills (bench/README.md, "The suite").
TEST_WORKERS ?= 3

.PHONY: run test lint check lock serve serve-sim worker clean

$(PY):
	"$$(sh bin/find-python)" -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# requirements-dev.txt is the lock of everything (the app's packages at requirements.txt's versions, and the tools'),
# each package pinned with its hashes: pip refuses a file whose hash it does not list.
$(VENV)/.installed: requirements.txt requirements-dev.txt | $(PY)
	$(PY) -m pip install --quiet --require-hashes -r requirements-dev.txt
	touch $@

# Recompile the locks from requirements.in and requirements-dev.in after editing them; a package already locked keeps
# its version while it still fits. `make lock LOCK_ARGS=--upgrade` moves every unpinned package to its newest version.
# The hashes are those of the index pip is configured with (PyPI unless pip.conf or PIP_* say otherwise).
LOCK_ARGS ?=
PIP_COMPILE = CUSTOM_COMPILE_COMMAND="make lock" $(VENV)/bin/pip-compile --quiet --generate-hashes --allow-unsafe \
	--strip-extras --no-emit-index-url --no-emit-find-links $(LOCK_ARGS)
lock: $(VENV)/.installed
	$(PIP_COMPILE) --output-file requirements.txt requirements.in
	$(PIP_COMPILE) --output-file requirements-dev.txt requirements-dev.in

run: $(VENV)/.installed
	PY=$(PY) HOST=$(HOST) PORT=$(PORT) sh bin/run-demo

# The suite runs on PostgreSQL, as CI does: DATABASE_URL when set, else the local one (bin/demo-database).
# Bytecode is written even where the shell sets PYTHONDONTWRITEBYTECODE: pytest then keeps its rewritten test
# modules (some 8 s of CPU for each test process to make again) and each Python the tests start (uvicorn, workers,
# vccsim, the benches) reads the app's compiled modules instead of compiling them (about 0.5 s each).
test: $(VENV)/.installed
	DATABASE_URL="$$($(PY) bin/demo-database vccweb_test 'make test')" && export DATABASE_URL && \
		env -u PYTHONDONTWRITEBYTECODE $(PY) -m pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

# mypy (configured in pyproject.toml) imports the settings through django-stubs: DEBUG=true so that needs no
# SECRET_KEY; no database or Redis is contacted.
lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	DEBUG=true $(VENV)/bin/mypy

# DEBUG=true, as for mypy: the checks need no SECRET_KEY (`make serve` runs the deploy checks with the real settings).
check: $(VENV)/.installed
	DEBUG=true $(PY) manage.py check
	DEBUG=true $(PY) manage.py makemigrations --check --dry-run

# As in production: DEBUG off (SECRET_KEY and ALLOWED_HOSTS required), uvicorn with WEB_CONCURRENCY workers
# (default: one per core), hashed static files, JSON logs, and the worker beside it. See README.
serve: $(VENV)/.installed
	PY=$(PY) HOST=$(HOST) PORT=$(PORT) sh bin/serve

# The worker, in the foreground: every background job (calls/tasks.py). Run one per host, or several; needs PostgreSQL
# (DATABASE_URL). `make run` and `make serve` start one beside the web server.
worker: $(VENV)/.installed
	$(PY) manage.py worker

serve-sim: $(VENV)/.installed
	$(PY) -m vccsim --port 8025

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache
