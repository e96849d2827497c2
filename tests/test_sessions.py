"""Sessions rules of metrics.md (transforms/sessions.py) on tiny hand-computed data."""

from __future__ import annotations

import pyspark.sql.functions as F
from chispa import assert_df_equality

from lakehouse.transforms.common import DateRange, calendar
from lakehouse.transforms.sessions import sessions_daily

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
