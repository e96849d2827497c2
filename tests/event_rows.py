"""Tiny inline event frames (dicts of fields) for the revenue, sessions and content tests.
"""

from __future__ import annotations

import datetime as dt

import pyspark.sql.functions as F

from lakehouse.transforms.common import with_activity_date


D = dt.date


EVENT_SCHEMA = (
    "event_id string, event string, ts string, user_id string, device string, page string, payment_status string, "
    "amount double, quiz_id string, score double, max_score double, passed boolean, duration_s double, "
    "course_id string, progress_pct double"
)


FIELDS = [f.split()[0] for f in EVENT_SCHEMA.split(", ")]


def make_events(spark, rows, timezone="UTC"):
    """Dicts with event, ts ('YYYY-MM-DD HH:MM:SS' UTC), user_id and any other field -> events with activity_date."""
    full = [tuple({"event_id": f"e{i}", **r}.get(f) for f in FIELDS) for i, r in enumerate(rows)]
    df = spark.createDataFrame(full, EVENT_SCHEMA).withColumn("ts", F.to_timestamp("ts"))
    return df.transform(with_activity_date(timezone))


def ev(event, ts, user, **kw):
    return {"event": event, "ts": ts, "user_id": user, **kw}


def _types(df):
    return [(f.name, f.dataType) for f in df.schema.fields]
