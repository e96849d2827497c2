#!/usr/bin/env bash
# Set up a fresh machine for the lakehouse: .venv with the project, Delta jars warmed,
# and (with --browser) Debian's chromium + chromium-driver for browser tests.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-}
if [ -z "$PY" ]; then
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
      PY=$candidate; break
    fi
  done
fi
[ -n "$PY" ] || { echo "setup: Python 3.11 is required (install python3.11)" >&2; exit 1; }

JAVA=${JAVA_HOME:+$JAVA_HOME/bin/}java
if ! command -v "$JAVA" >/dev/null 2>&1; then
  echo "setup: Java 17 is required by Spark: install it (e.g. apt-get install openjdk-17-jre-headless) or set JAVA_HOME" >&2
  exit 1
fi
if ! "$JAVA" -version 2>&1 | grep -Eq 'version "(17|21)'; then
  echo "setup: Spark 4.2 needs Java 17; found: $("$JAVA" -version 2>&1 | head -1)" >&2
  exit 1
fi

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $PY"
  "$PY" -m venv .venv
fi
stamp=.venv/.installed-$(cat pyproject.toml | sha1sum | cut -c1-12)
if [ ! -f "$stamp" ]; then
  echo "setup: installing the project and its dependencies into .venv"
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e ".[dev]"
  rm -f .venv/.installed-*
  touch "$stamp"
fi

# PostgreSQL for the jdbc source's tests (tests/test_jdbc.py): Debian's server when initdb/pg_ctl are missing.
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo -n"
  if command -v apt-get >/dev/null 2>&1 && { [ -z "$SUDO" ] || sudo -n true 2>/dev/null; }; then
    echo "setup: installing Debian's postgresql (for tests/test_jdbc.py)"
    { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql; } >.venv/postgresql.log 2>&1 \
      || echo "setup: could not install postgresql (see .venv/postgresql.log); tests/test_jdbc.py will skip" >&2
  else
    echo "setup: PostgreSQL (initdb, pg_ctl) not found and not installable here; tests/test_jdbc.py will skip" >&2
  fi
fi

# Resolve the jars once through Spark's own spark.jars.packages (Maven Central); again when the packages change.
jars_stamp=.venv/.jars-ready-$(grep -E '^ *packages:' conf/base/spark.yaml | sha1sum | cut -c1-12)
if [ ! -f "$jars_stamp" ]; then
  echo "setup: resolving the Delta Lake and JDBC driver jars (first time only)"
  # (No class-data archive from this start: its classpath is the one jar resolution builds.)
  .venv/bin/python -c "from lakehouse.config import load_config; from lakehouse.session import build_spark; build_spark(load_config(overrides={'spark.class_data_sharing': False})).stop()" >/dev/null 2>.venv/jars.log \
    || { echo "setup: could not start Spark with Delta (see .venv/jars.log)" >&2; tail -5 .venv/jars.log >&2; exit 1; }
  rm -f .venv/.jars-ready*
  touch "$jars_stamp"
fi

# The driver JVM's class-data archive (lakehouse/classdata.py, written by lakehouse/warmup.py): one small pipeline run, once per venv.
if [ ! -f .venv/.cds-ready ]; then
  echo "setup: writing the JVM class-data archive (first time only, about a minute)"
  if .venv/bin/python -m lakehouse.warmup >/dev/null 2>.venv/cds.log; then
    touch .venv/.cds-ready
  else
    echo "setup: no class-data archive (runs start a few seconds slower; see .venv/cds.log)" >&2
  fi
fi

if [ "${1:-}" = "--browser" ]; then
  bash scripts/install_chromium.sh
fi
echo "setup: ready (.venv/bin/lakehouse)"
