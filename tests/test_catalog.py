"""The gold catalogue is the one declaration of each gold table: the registry, the expectations and
the file layout agree with it."""

from __future__ import annotations

from pathlib import Path

import yaml

from lakehouse import catalog
from lakehouse.maintenance import ZORDER
from lakehouse.tables import GOLD

ROOT = Path(__file__).resolve().parents[1]


def test_the_registry_lists_exactly_the_catalogue_tables():
    assert GOLD == catalog.NAMES
    assert len(set(GOLD)) == len(GOLD)


def test_each_gold_table_has_a_fail_unique_rule_over_its_catalogue_grain():
    rules = yaml.safe_load((ROOT / "conf/base/expectations.yaml").read_text())
    for t in catalog.GOLD_TABLES:
        uniques = [r for r in rules.get(f"gold.{t.name}", []) if r["rule"] == "unique"]
        assert uniques, f"gold.{t.name} has no unique rule"
        assert (tuple(uniques[0]["columns"]), uniques[0]["action"]) == (t.grain, "fail"), t.name


def test_each_family_has_its_transform_module_and_its_test_module():
    for family in catalog.FAMILIES:
        assert (ROOT / "lakehouse" / "transforms" / f"{family}.py").exists(), family
        assert (ROOT / "tests" / f"test_{family}.py").exists(), family


def test_zorder_and_filter_columns_are_grain_or_dimension_columns():
    for t in catalog.GOLD_TABLES:
        allowed = set(t.grain) | set(t.dimensions) | ({t.date_column} if t.date_column else set())
        assert set(t.zorder) <= allowed, t.name
        assert ZORDER.get(f"gold.{t.name}", ()) == t.zorder


def test_an_unknown_scope_or_table_is_refused_with_the_known_names():
    import pytest

    with pytest.raises(ValueError, match="unknown scope 'daily'"):
        catalog.GoldTable("x", "engagement", ("activity_date",), full=None, rebuild=None, scope="daily")
    with pytest.raises(KeyError, match="engagement_daily"):
        catalog.table("no_such_table")
