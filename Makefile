# Product-analytics lakehouse. `make demo` sets everything up and serves the dashboard; `make test` runs the tests.
SHELL := /bin/bash
VENV := .venv/bin
DEMO_USERS ?= 2000
DEMO_DAYS ?= 90
DEMO_DIR ?= demo
HOST ?= 127.0.0.1
PORT ?= 8050

.PHONY: setup setup-browser demo demo-data lake dashboard serve-sql wheel test test-fast test-trust test-bi test-superset test-cluster test-s3 test-pg bench bench-pipeline bench-10m bench-dashboard bench-maintenance screenshots clean

setup:
	@bash scripts/setup.sh

setup-browser:
	@bash scripts/setup.sh --browser

demo-data: setup
	@test -d $(DEMO_DIR)/landing || $(VENV)/lakehouse generate --out $(DEMO_DIR)/landing --users $(DEMO_USERS) --days $(DEMO_DAYS) --seed 42

lake: demo-data
	$(VENV)/lakehouse run --landing $(DEMO_DIR)/landing --lake $(DEMO_DIR)/lake

dashboard: setup
	$(VENV)/lakehouse dashboard --lake $(DEMO_DIR)/lake --host $(HOST) --port $(PORT)

demo: lake dashboard

# The read-only SQL endpoint for BI tools over the demo lake (docs/bi-tools.md).
SQL_PORT ?= 10000
serve-sql: lake
	$(VENV)/lakehouse serve-sql --lake $(DEMO_DIR)/lake --host $(HOST) --port $(SQL_PORT)

# The wheel Databricks and Kubernetes deployments install (docs/deploy.md), in dist/.
wheel: setup
	$(VENV)/python -m build --wheel --outdir dist .

# Two pytest-xdist workers (a Spark session each; every test file runs whole on one worker, tests/conftest.py):
# 1 runs the suite in one process, more suit machines with more cores (each worker: a JVM of up to 4 GB).
TEST_WORKERS ?= 2
test: setup-browser
	$(VENV)/python -m pytest -q -p no:cacheprovider -m "not trust and not bi and not cluster and not s3 and not pg" --durations=10 \
	  $(if $(filter-out 1 0,$(TEST_WORKERS)),-n $(TEST_WORKERS) --dist loadfile)

# The SQL endpoint started on a built lake and queried with PyHive and SQLAlchemy (minutes: own Spark JVMs).
test-bi: setup
	$(VENV)/python -m pytest -q -p no:cacheprovider -m bi --durations=10

# Superset 6.1.0 itself over the endpoint (tests/test_superset.py, scripts/superset_screenshot.py): its own venv,
# .venv-superset (Superset's pins clash with the project's), made here once; then a chart of gold checked
# against gold, and its page drawn in headless Chromium (minutes).
SUPERSET_PIP := apache-superset==6.1.0 rich cachetools 'flask-caching<2.4' pyhive thrift thrift-sasl pure-sasl
test-superset: setup-browser
	@test -x .venv-superset/bin/superset || { echo "test-superset: installing Superset into .venv-superset (minutes, once)"; \
	  python3.11 -m venv .venv-superset && .venv-superset/bin/python -m pip install --quiet $(SUPERSET_PIP); }
	.venv-superset/bin/python -m pip install --quiet --force-reinstall --no-deps ./contrib/sqlalchemy-sparksql
	LAKEHOUSE_SUPERSET_PYTHON=$(CURDIR)/.venv-superset/bin/python $(VENV)/python -m pytest -q -p no:cacheprovider -m bi --durations=5 tests/test_superset.py

# A standalone Spark master and two workers on 127.0.0.1 (pyspark's sbin/spark-daemon.sh): a lake built
# through `lakehouse submit --master spark://...` equals a local build (minutes; docs/deploy.md).
test-cluster: setup
	$(VENV)/python -m pytest -q -p no:cacheprovider -m cluster --durations=10 tests/test_cluster.py

# Object storage: a local S3 server (moto) started by the tests, the pipeline on s3a:// (minutes: Spark
# runs of their own; the first ever resolves hadoop-aws and its ~700 MB AWS SDK bundle into the Ivy cache).
test-s3: setup
	$(VENV)/python -m pytest -q -p no:cacheprovider -m s3 --durations=10

# jdbc sources against a throwaway PostgreSQL server (initdb + pg_ctl on 127.0.0.1; skipped without PostgreSQL).
test-pg: setup
	$(VENV)/python -m pytest -q -p no:cacheprovider -m pg --durations=10

# Fault-injection and many-run tests (SIGKILL at many moments, 10 incremental batches): minutes each.
test-trust: setup
	$(VENV)/python -m pytest -q -p no:cacheprovider -m trust --durations=10

test-fast: setup
	$(VENV)/python -m pytest -q -p no:cacheprovider -m "not browser and not e2e and not bi and not cluster and not s3 and not pg"

bench: bench-pipeline bench-dashboard

# Full build, one more day and nothing new at 1M and 2M generated events, each beside a DuckDB peer
# (bench/out/pipeline-<size>.json); generated landings are cached under bench/out. BENCH_ARGS="--set KEY=VALUE".
bench-pipeline: setup
	$(VENV)/python -m bench.pipeline --sizes 1m,2m $(BENCH_ARGS)

# The same at 10M events (50,000 users x 365 days): long, and needs the machine to itself.
bench-10m: setup
	$(VENV)/python -m bench.pipeline --sizes 10m $(BENCH_ARGS)

bench-maintenance: setup
	$(VENV)/python -m bench.maintenance

# The dashboard is timed on a lake the pipeline builds from 10,000 users x 365 days of generated events.
DASH_BENCH := bench/out/dash10k
bench-dashboard: setup-browser
	test -d $(DASH_BENCH)/landing || $(VENV)/lakehouse generate --out $(DASH_BENCH)/landing --users 10000 --days 365 --seed 7
	test -d $(DASH_BENCH)/lake/gold/users || $(VENV)/lakehouse run --landing $(DASH_BENCH)/landing --lake $(DASH_BENCH)/lake --set spark.driver_memory=6g
	$(VENV)/python -m dashboard.bench --lake $(DASH_BENCH)/lake

screenshots: setup-browser lake
	$(VENV)/python scripts/screenshots.py --lake $(DEMO_DIR)/lake --out docs/screenshots

clean:
	rm -rf $(DEMO_DIR) bench/out .pytest_cache
