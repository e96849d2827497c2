"""Sessions rules of metrics.md (transforms/sessions.py) on tiny hand-computed data."""

from __future__ import annotations

import datetime as dt
import random

import pyspark.sql.functions as F
from chispa import assert_df_equality

from lakehouse.transforms.common import DateRange, calendar
from lakehouse.transforms.sessions import new_events_reach, outside_reach, reached_events, sessionize, sessions_daily

from event_rows import D


def test_sessions_belong_to_the_local_date_of_their_first_event(spark):
    tz = "Europe/Paris"
    rng = DateRange(D(2024, 1, 1), D(2024, 1, 3))
    sessions = spark.createDataFrame([
        ("u1", "s1", "2024-01-01 23:30:00", 2400),  # 00:30 on 01-02 in Paris
        ("u1", "s2", "2024-01-02 10:00:00", 600),
        ("u2", "s3", "2024-01-01 10:00:00", 0),
    ], "user_id string, session_id string, session_start string, duration_s long").withColumn(
        "session_start", F.to_timestamp("session_start"))
    got = sessions_daily(calendar(spark, rng), sessions, tz)
    expected = spark.createDataFrame([
        (D(2024, 1, 1), 1, 1, 0.0, 0.0, 0.0),
        (D(2024, 1, 2), 2, 1, 3000.0, 1500.0, 3000.0),
        (D(2024, 1, 3), 0, 0, 0.0, None, None),
    ], "activity_date date, sessions long, users long, total_session_seconds double, "
       "avg_session_seconds double, avg_time_per_user_seconds double")
    assert_df_equality(got, expected, ignore_nullable=True)


# ---------------------------------------------------------------- sessions a batch can reach (silver)

T0 = dt.datetime(2026, 1, 1, 10, 0)
EVENTS = "user_id string, session_id string, ts timestamp, event string"


def _at(minutes: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def _after_batch(spark, before: list, new: list, gap: int = 30):
    """(sessions updated from the batch's reach, sessions cut from everything), both sorted."""
    cut = sessionize(gap)
    before_df, new_df = spark.createDataFrame(before, EVENTS), spark.createDataFrame(new, EVENTS)
    old = before_df.transform(cut)
    everything = before_df.unionByName(new_df)
    reach = new_events_reach(gap)(new_df, old)
    updated = old.transform(outside_reach(reach)).unionByName(everything.transform(reached_events(reach)).transform(cut))
    key = ("user_id", "is_derived", "session_start", "session_id")
    return (sorted(tuple(r) for r in updated.orderBy(*key).collect()),
            sorted(tuple(r) for r in everything.transform(cut).orderBy(*key).collect()))


def test_a_new_event_within_the_gap_extends_the_derived_session_before_it(spark):
    before = [("u1", None, _at(0), "page_view"), ("u1", None, _at(10), "page_view"),  # session A
              ("u1", None, _at(120), "page_view")]                                    # session B
    updated, rebuilt = _after_batch(spark, before, [("u1", None, _at(40), "page_view")])
    assert updated == rebuilt
    assert [(r[4], r[6]) for r in updated] == [(3, True), (1, True)]  # A has 3 events now, B unchanged


def test_a_new_event_bridging_two_derived_sessions_merges_them(spark):
    before = [("u1", None, _at(0), "page_view"), ("u1", None, _at(50), "page_view")]
    updated, rebuilt = _after_batch(spark, before, [("u1", None, _at(25), "page_view")])
    assert updated == rebuilt and len(updated) == 1 and updated[0][4] == 3
    assert updated[0][1] == f"derived-u1-{int(_at(0).timestamp())}"


def test_a_new_event_more_than_the_gap_after_every_session_starts_its_own(spark):
    before = [("u1", None, _at(0), "page_view"), ("u2", None, _at(5), "page_view")]
    updated, rebuilt = _after_batch(spark, before, [("u1", None, _at(31), "page_view")])
    assert updated == rebuilt and len(updated) == 3


def test_a_late_event_of_an_old_client_session_cuts_that_session_again_whole(spark):
    before = [("u1", "s1", _at(0), "page_view"), ("u1", "s1", _at(600), "page_view"),
              ("u1", "s2", _at(2000), "page_view")]
    updated, rebuilt = _after_batch(spark, before, [("u1", "s1", _at(-5), "page_view")])
    assert updated == rebuilt
    assert [(r[1], r[4]) for r in updated] == [("s1", 3), ("s2", 1)]


def test_excluded_events_in_a_batch_reach_no_session(spark):
    before = [("u1", None, _at(0), "page_view")]
    new = [("u1", None, _at(5), "app_uninstall")]
    reach = new_events_reach(30)(spark.createDataFrame(new, EVENTS), spark.createDataFrame(before, EVENTS).transform(sessionize(30)))
    assert reach.clients.count() == 0 and reach.since.count() == 0


def test_sessions_updated_from_a_batch_equal_sessions_cut_from_everything(spark):
    """Random users, ids and gaps (late, early, bridging, client ids reused), split into a lake and a
    batch three ways: the updated sessions always equal a rebuild."""
    rnd = random.Random(7)
    rows = []
    for u in range(6):
        t = 0.0
        for _ in range(40):
            t += rnd.choice([1, 5, 20, 29.999, 30, 30.001, 45, 200])
            sid = rnd.choice([None, None, f"c{rnd.randint(0, 3)}"])
            rows.append((f"u{u}", sid, _at(t), rnd.choice(["page_view", "page_view", "app_uninstall"])))
    for split in range(3):
        shuffled = rows[:]
        rnd.shuffle(shuffled)
        cut_at = len(rows) * (split + 1) // 4
        updated, rebuilt = _after_batch(spark, shuffled[:cut_at], shuffled[cut_at:])
        assert updated == rebuilt, f"split {split}"
