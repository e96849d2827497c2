"""The data layer as a package: one reader of the lake, one range helper, period maths, one URL builder."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from dashboard import data
from dashboard.app import url_queries
from dashboard.data import lake
from dashboard.data.periods import Periods, d2i
from dashboard.filters import Filters

DASHBOARD = Path(__file__).resolve().parents[2] / "dashboard"


def test_only_the_lake_module_opens_delta_tables_or_the_lake_path():
    readers = []
    for path in sorted(DASHBOARD.rglob("*.py")):
        text = path.read_text()
        if re.search(r"^\s*(from deltalake|import deltalake)|require_lake\(\)", text, re.M):
            readers.append(path.relative_to(DASHBOARD).as_posix())
    assert readers == ["data/lake.py"]


def test_gold_range_is_the_table_in_the_filters_dates(configured):
    f = Filters.from_inputs("2024-01-05", "2024-01-20")
    rows = lake.gold_range("sessions_daily", f)
    gold = data.gold("sessions_daily")
    want = gold[(gold["activity_date"] >= pd.Timestamp("2024-01-05"))
                & (gold["activity_date"] <= pd.Timestamp("2024-01-20"))]
    assert len(rows) == len(want) == 16
    assert lake.gold_range("no_such_table", f) is None
    assert lake.gold_range("sessions_daily", Filters.from_inputs("2030-01-01", "2030-01-31")) is None


def test_periods_of_a_range_cut_at_both_ends():
    # Wednesday 2024-01-03 .. Tuesday 2024-01-16: three Monday-weeks, the first and last partial
    per = Periods.of(date(2024, 1, 3), date(2024, 1, 16), "week")
    assert per.k == 3
    assert list(per.frame()["period"].dt.date) == [date(2024, 1, 1), date(2024, 1, 8), date(2024, 1, 15)]
    assert per.partial().tolist() == [True, False, True]
    assert per.partial(first=d2i(date(2024, 1, 1))).tolist() == [False, False, True]
    days = np.array([d2i(date(2024, 1, d)) for d in (3, 7, 8, 16)])
    assert per.count(per.position(days)).tolist() == [2.0, 1.0, 1.0]
    assert Periods.of(date(2024, 1, 3), date(2024, 1, 16), "day").partial().sum() == 0


def test_the_url_keeps_its_form():
    """The address bar and nav links as the browser built them before the builder moved to Python."""
    f = Filters.from_inputs("2024-01-05T00:00:00", "2024-01-20", "week", ["FR", "DE"], [], ["female"], ["<18"])
    q = url_queries(f, {"cohort": "week", "measure": None, "q": ""})
    assert q["nav"] == "?start=2024-01-05&end=2024-01-20&grain=week&country=DE,FR&gender=female&age=%3C18"
    assert q["page"] == q["nav"] + "&cohort=week"
    assert url_queries(Filters.from_inputs("2024-01-05", "2024-01-20", preset="30d"), None) == \
        {"page": "", "nav": ""}
    assert url_queries(Filters.from_inputs("2024-01-05", "2024-01-20", preset="7d"), {"active": "1"}) == \
        {"page": "?range=7d&active=1", "nav": "?range=7d"}
    for query in (q["page"], q["nav"]):  # and reads back as the same selection
        assert Filters.from_query(query) == f


def test_the_browser_only_puts_the_server_built_url_in_place():
    js = (DASHBOARD / "assets" / "lakehouse.js").read_text()
    assert "URLSearchParams" not in js and "DEFAULT_PRESET" not in js
