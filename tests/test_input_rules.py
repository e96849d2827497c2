"""Input read as the contract says (issue 11, findings 7 and 11): sub-second time arithmetic,
numbers stored exactly as sent, every ISO-8601 spelling of an instant, CSV read as CSV."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from lakehouse.transforms import silver as T
from lakehouse.transforms.gold import DateRange, calendar
from lakehouse.transforms.product import sessions_daily

INGESTED = dt.datetime(2026, 1, 10, 12, 0, 0)
BRONZE_SCHEMA = "value string, source_file string, file_modified_at timestamp, line_id long, batch_id long, ingested_at timestamp"
EVENTS_FILE = "file:/landing/events/a.jsonl"


def bronze(spark, lines, source=EVENTS_FILE):
    """Bronze rows for raw lines, in order (one file, one batch)."""
    rows = [(line, source, dt.datetime(2026, 1, 10, 11), i, 1, INGESTED) for i, line in enumerate(lines)]
    return spark.createDataFrame(rows, BRONZE_SCHEMA)


def event(i, **over):
    base = {"event_id": f"e{i}", "event": "page_view", "ts": "2026-01-09T10:00:00Z", "user_id": "u1"}
    base.update(over)
    return json.dumps(base)


def parsed_events(spark, lines):
    return bronze(spark, lines).transform(T.parse_events()).orderBy("line_id").collect()


# ---------------------------------------------------------------- 7: time arithmetic

def _events(spark, rows):
    return spark.createDataFrame(rows, "user_id string, session_id string, ts timestamp, event string")


T0 = dt.datetime(2026, 1, 5, 10, 0, 0)
MS = dt.timedelta(milliseconds=1)
SUB_SECOND_EVENTS = [
    ("u1", None, T0, "page_view"),
    ("u1", None, T0 + 600_100 * MS, "page_view"),                    # 10:10:00.100
    ("u1", None, T0 + (600_100 + 1_800_800) * MS, "page_view"),      # 10:40:00.900: 1,800.8 s later
    ("u1", None, T0 + (600_100 + 1_800_800 + 1_340) * MS, "page_view"),  # 10:40:02.240
    ("u2", "s1", T0 + dt.timedelta(hours=1, milliseconds=500), "page_view"),  # 11:00:00.500
    ("u2", "s1", T0 + dt.timedelta(hours=1, seconds=10), "page_view"),        # 11:00:10.000
]
# By hand: u1 600.1 s, then (a gap of 1,800.8 s > 30 min) 1.34 s; u2's client session 9.5 s.
# Cut to whole seconds, u1's gap was 10:10:00 -> 10:40:00 = 1,800 s: one session of 2,402 s.
EXACT_TOTAL = 600.1 + 1.34 + 9.5


def test_session_gaps_and_lengths_use_the_full_timestamps(spark):
    got = _events(spark, SUB_SECOND_EVENTS).transform(T.sessionize(30)).orderBy("user_id", "session_start").collect()
    assert [(r["user_id"], r["events"]) for r in got] == [("u1", 2), ("u1", 2), ("u2", 2)]
    assert [r["duration_s"] for r in got] == pytest.approx([600.1, 1.34, 9.5], abs=1e-9)
    assert dict(_events(spark, SUB_SECOND_EVENTS).transform(T.sessionize(30)).dtypes)["duration_s"] == "double"


def test_daily_session_seconds_come_from_the_exact_session_lengths(spark):
    sessions = _events(spark, SUB_SECOND_EVENTS).transform(T.sessionize(30))
    row = sessions_daily(calendar(spark, DateRange(dt.date(2026, 1, 5), dt.date(2026, 1, 5))), sessions, "UTC").collect()[0]
    assert (row["sessions"], row["users"]) == (3, 2)
    assert row["avg_session_seconds"] == pytest.approx(EXACT_TOTAL / 3, abs=1e-9)       # 203.646...
    assert row["avg_time_per_user_seconds"] == pytest.approx(EXACT_TOTAL / 2, abs=1e-9)  # 305.47


@pytest.mark.xfail(strict=True, reason="lakehouse/transforms/product.py (not this branch's to edit) still casts "
                   "total_session_seconds to long: 610 instead of 610.94")
def test_total_session_seconds_is_the_exact_sum_of_session_lengths(spark):
    sessions = _events(spark, SUB_SECOND_EVENTS).transform(T.sessionize(30))
    row = sessions_daily(calendar(spark, DateRange(dt.date(2026, 1, 5), dt.date(2026, 1, 5))), sessions, "UTC").collect()[0]
    assert row["total_session_seconds"] == pytest.approx(EXACT_TOTAL, abs=1e-9)   # 610.94
