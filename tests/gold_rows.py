"""Tiny inline frames for the gold transform tests: events, profiles and the prepared user-days.
"""

from __future__ import annotations

import datetime as dt

from lakehouse.transforms.common import active_only, calendar, date_range, user_days, with_activity_date
from lakehouse.transforms.users import first_event_country, user_dimension


D = dt.date


EVENT_SCHEMA = ("event_id string, event string, ts timestamp, user_id string, device string, country string, "
                "payment_status string, amount double, points long")


PROFILE_SCHEMA = ("user_id string, registered_at timestamp, gender string, birth_date date, age int, country string, "
                  "signup_channel string")


SESSION_SCHEMA = ("user_id string, session_id string, session_start timestamp, session_end timestamp, events long, "
                  "duration_s long, is_derived boolean")


def ev(user, ts, event="page_view", device="web", country=None, status=None, amount=None, points=None, eid=None):
    return (eid or f"{user}-{ts.isoformat()}-{event}", event, ts, user, device, country, status, amount, points)


def at(day: int, hour: int = 12, month: int = 1) -> dt.datetime:
    return dt.datetime(2026, month, day, hour)


def build(spark, events, profiles=(), tz="UTC"):
    """The shared gold intermediates, as the gold step prepares them."""
    e = spark.createDataFrame(list(events), EVENT_SCHEMA).transform(with_activity_date(tz))
    active = e.transform(active_only(("app_uninstall",)))
    rng = date_range(active)
    days = user_days(active, spark.createDataFrame([], "user_id string, activity_date date, sessions long"))
    p = spark.createDataFrame(list(profiles), PROFILE_SCHEMA)
    users = user_dimension(days, p, first_event_country(e), rng, tz)
    return e, days, users, rng, calendar(spark, rng)


def rows(df, *cols):
    return [tuple(r[c] for c in cols) for r in df.orderBy(cols[0]).collect()]
