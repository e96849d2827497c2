"""Lifecycle rules of metrics.md (transforms/lifecycle.py) on tiny hand-computed data."""

from __future__ import annotations

import datetime as dt

import pyspark.sql.functions as F

from lakehouse.transforms.common import with_neighbours
from lakehouse.transforms.lifecycle import lifecycle_daily

from gold_rows import D, at, build, ev, rows


def test_every_lifecycle_category(spark):
    # day1: a, b new. day2: a returning, b dormant, r (registered day 1) resurrecting-not-new.
    # day4: b resurrecting, a and r dormant on day 3.
    events = [ev("a", at(1)), ev("b", at(1)), ev("a", at(2)), ev("r", at(2)), ev("b", at(4))]
    profiles = [("r", dt.datetime(2026, 1, 1, 8), None, None, None, None, None)]
    e, days, users, rng, cal = build(spark, events, profiles)
    life = lifecycle_daily(cal, with_neighbours(days), users, rng)
    assert rows(life, "activity_date", "new", "returning", "resurrecting", "dormant") == [
        (D(2026, 1, 1), None, None, None, None),   # the range's first date has no lifecycle
        (D(2026, 1, 2), 0, 1, 1, 1),               # a returning, r resurrecting (first seen day 1), b dormant
        (D(2026, 1, 3), 0, 0, 0, 2),               # a and r dormant
        (D(2026, 1, 4), 0, 0, 1, 0),               # b resurrecting
    ]


def test_lifecycle_new_plus_returning_plus_resurrecting_is_dau(spark):
    events = [ev(u, at(d)) for u, ds in {"a": [1, 2, 3, 5], "b": [2, 3], "c": [3, 5, 6], "d": [6]}.items() for d in ds]
    e, days, users, rng, cal = build(spark, events)
    life = lifecycle_daily(cal, with_neighbours(days), users, rng)
    dau = days.groupBy("activity_date").count()
    joined = life.join(dau, "activity_date").filter(F.col("new").isNotNull())
    assert joined.filter(F.col("new") + F.col("returning") + F.col("resurrecting") != F.col("count")).count() == 0
