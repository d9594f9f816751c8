# `make test` and `make demo` do all of their own set-up on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DYNAMODB_LOCAL_VERSION := 11.1.0
DYNAMODB_LOCAL_DIR := .cache/dynamodb-local
export REDIMO_DYNAMODB_LOCAL_DIR := $(abspath $(DYNAMODB_LOCAL_DIR))

.PHONY: test test-boto3 demo bench bench-migrate bench-celery bench-peers bench-server celery-integration \
	django-redis-tests django-cache-tests fakeredis-tests deps system-packages clean

test: deps
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# the suite with the lean transport off: every DynamoDB request through boto3
test-boto3: deps
	REDIMO_LEAN=0 $(BIN)/python -m pytest $(PYTEST_ARGS)

demo: deps
	$(BIN)/python example_project/demo.py

bench: deps
	$(BIN)/python benchmarks/run.py --iterations 200 --write-docs

# `redimo migrate` of 100,000 mixed keys against a bare boto3 BatchWriteItem loop; about 10 minutes.
bench-migrate: deps
	$(BIN)/python benchmarks/migrate.py --write-docs

bench-celery: deps
	$(BIN)/python -m pip install --quiet 'sqlalchemy>=2.0'  # kombu's SQLAlchemy transport, compared in broker.py
	$(BIN)/python benchmarks/celery/run.py
	$(BIN)/python benchmarks/celery/broker.py

# Redimo against other DynamoDB libraries (django-dynamodb-cache 0.6.0, Django's cache sessions on it, Celery's
# dynamodb:// backend) on one DynamoDB Local, interleaved; about 6 minutes. django-dynamodb-sessions 0.6 is not
# installed: it cannot run here (docs/performance.md, "Against other DynamoDB libraries").
bench-peers: deps
	$(BIN)/python -m pip install --quiet django-dynamodb-cache==0.6.0
	$(BIN)/python benchmarks/peers/run.py

# Celery 5.7's own integration suite (t/integration of its sdist) with the redimo:// result backend (and
# broker, with TEST_BROKER=redimo://...; the other variables: see the script); about 14 minutes.
celery-integration: deps
	scripts/celery-integration.sh $(PYTEST_ARGS)

# django-redis 7.0's own backend tests against RedimoCache (also part of `make test`); about 30 s.
django-redis-tests: deps
	scripts/django-redis-tests.sh $(PYTEST_ARGS)

# Django's own RedisCacheTests (its sdist's tests/cache) with Django's RedisCache on `redimo serve` (also part
# of `make test`); about 30 s. DJANGO_CACHE_TESTS_TARGET=redis runs them on a real redis-server instead.
django-cache-tests: deps
	scripts/django-cache-tests.sh

# fakeredis 2.41's own bitmap, generic-key and stream tests on Redimo and on fakeredis (also part of
# `make test`); about 3 minutes.
fakeredis-tests: deps
	scripts/fakeredis-tests.sh $(PYTEST_ARGS)

# redis-benchmark (GET, SET, LPUSH, SET -P 16) on `redimo serve` with DynamoDB Local and on redis-server.
bench-server: deps
	$(BIN)/python benchmarks/server.py

deps: system-packages $(VENV)/.installed $(DYNAMODB_LOCAL_DIR)/DynamoDBLocal.jar

system-packages:
	@scripts/install-system-packages.sh

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,django,celery]'
	touch $@

$(DYNAMODB_LOCAL_DIR)/DynamoDBLocal.jar:
	scripts/install-dynamodb-local.sh $(DYNAMODB_LOCAL_VERSION) $(DYNAMODB_LOCAL_DIR)

clean:
	rm -rf $(VENV) .cache build *.egg-info
