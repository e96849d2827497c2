"""Superset itself over `lakehouse serve-sql` (scripts/superset_screenshot.py, headless).

Superset (apache-superset 6.1.0) is not a dependency of the project: it needs a venv of its own
(its pins clash with ours). `make test-superset` makes `.venv-superset` with it and
contrib/sqlalchemy-sparksql, and runs this test with LAKEHOUSE_SUPERSET_PYTHON pointing at it; without
that variable the test is skipped. It takes minutes: a Spark JVM for the endpoint, and Superset's
`db upgrade` and `init`.
"""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path

import pytest
from deltalake import DeltaTable

from lakehouse import pipeline
from lakehouse.generator import generate

ROOT = Path(__file__).resolve().parent.parent
ENV = "LAKEHOUSE_SUPERSET_PYTHON"


def load_script():
    spec = importlib.util.spec_from_file_location("superset_screenshot", ROOT / "scripts" / "superset_screenshot.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def superset_python() -> str:
    value = os.environ.get(ENV)
    if not value:
        pytest.skip(f"Superset is not part of `make setup`: `make test-superset` installs it into .venv-superset "
                    f"and runs this test ({ENV} names that venv's python)")
    return value


@pytest.mark.bi
def test_superset_charts_gold_through_the_endpoint_with_gold_numbers(superset_python, spark, cfg, tmp_path):
    root = tmp_path
    generate(str(root / "landing"), users=60, days=10, seed=5)
    pipeline.run(spark, cfg, str(root / "landing"), str(root / "lake"), progress=lambda m: None)
    gold = DeltaTable(str(root / "lake" / "gold" / "engagement_daily")).to_pandas(columns=["activity_date", "dau"])
    png = root / "chart.png"

    seen = load_script().run(superset_python, lake=str(root / "lake"), out=str(png), say=lambda m: None)

    # Superset's table list and dataset creation went through the sparksql:// dialect
    assert {"bronze", "silver", "gold", "ops"} <= set(seen["schemas"])
    assert "engagement_daily" in seen["tables"] and "gold" not in seen["tables"]
    assert {"activity_date", "dau"} <= set(seen["columns"]) and seen["is_dttm"]
    # the SQL Superset generated for the chart, with Spark's quoting, ran on the endpoint
    assert seen["status"] == "success"
    assert "sum(`dau`)" in seen["sql"] and "`gold`.`engagement_daily`" in seen["sql"], seen["sql"]
    assert not re.search(r'"(dau|activity_date|gold|engagement_daily)"', seen["sql"]), seen["sql"]
    # the chart's numbers, from Superset's chart data API, are gold's, day by day
    assert sum(seen["chart_dau"].values()) == int(gold["dau"].sum()) > 0
    assert seen["chart_dau"] == {str(d)[:10]: int(v) for d, v in zip(gold["activity_date"], gold["dau"])}
    assert len(seen["chart_dau"]) == 10
    # the chart page was drawn and saved
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000


def test_a_python_without_superset_is_one_line(tmp_path):
    import sys

    script = load_script()
    with pytest.raises(script.SupersetError, match="no Superset with contrib/sqlalchemy-sparksql there"):
        script.run(sys.executable, lake=str(tmp_path))
    with pytest.raises(script.SupersetError, match="not an executable file"):
        script.run(str(tmp_path / "python"))
