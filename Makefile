VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
MANAGE := $(PY) manage.py
PORT ?= 8000

.PHONY: install run test test-slow lint messages bench bench-quick serve

$(VENV)/.installed: requirements.txt
	python3.11 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -r requirements.txt
	touch $@

install: $(VENV)/.installed messages

messages: $(VENV)/.installed
	$(VENV)/bin/pybabel compile --domain django --directory locale --statistics

# Without DATABASE_URL, an embedded PostgreSQL keeps its data in var/postgres.
run: export PORT := $(PORT)
run: install
	$(MANAGE) migrate --noinput
	$(MANAGE) seed_demo
	$(MANAGE) runserver 127.0.0.1:$(PORT)

# The everyday run leaves out the long runs marked `slow`; CI runs both.
test: install
	$(VENV)/bin/pytest -m "not slow"

test-slow: install
	$(VENV)/bin/pytest -m slow

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/bandit --quiet --recursive accounts notifications recovery support api config --exclude '*/migrations/*' --severity-level medium
	$(VENV)/bin/mypy accounts notifications recovery support api config tests

bench: install
	$(VENV)/bin/python -m bench.run

bench-quick: install
	$(VENV)/bin/python -m bench.run --quick

# The production process set (gunicorn, Celery worker and beat) on PostgreSQL and Redis.
# Local defaults; set the variables to point it elsewhere.
serve: export DJANGO_SETTINGS_MODULE = config.settings.production
serve: export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
serve: export DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/recoverydesk
serve: export REDIS_URL ?= redis://127.0.0.1:6379/0
serve: export DJANGO_SECURE_SSL_REDIRECT ?= False
serve: export DJANGO_SECURE_COOKIES ?= False
serve: export DJANGO_SITE_URL ?= http://127.0.0.1:$(PORT)
serve: install
	mkdir -p var
	test -s var/secret_key || $(PY) -c "import secrets; print(secrets.token_urlsafe(64))" > var/secret_key
	test -s var/audit_key || $(PY) -c "import secrets; print(secrets.token_urlsafe(48))" > var/audit_key
	$(PY) -m config.postgres
	DJANGO_SECRET_KEY=$$(cat var/secret_key) DJANGO_AUDIT_KEY=$$(cat var/audit_key) $(MANAGE) migrate --noinput
	DJANGO_SECRET_KEY=$$(cat var/secret_key) DJANGO_AUDIT_KEY=$$(cat var/audit_key) $(MANAGE) collectstatic --noinput -v0
	DJANGO_SECRET_KEY=$$(cat var/secret_key) DJANGO_AUDIT_KEY=$$(cat var/audit_key) $(VENV)/bin/honcho start
