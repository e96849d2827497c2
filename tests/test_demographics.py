"""Demographics rules of metrics.md (transforms/demographics.py) on tiny hand-computed data."""

from __future__ import annotations

from lakehouse.transforms.demographics import demographics

from gold_rows import at, build, ev, rows


def test_demographics_as_of_the_last_date(spark):
    events = [ev("a", at(1)), ev("b", at(10, month=2)), ev("c", at(1)), ev("c", at(15, month=2))]
    profiles = [("a", None, "female", None, 30, "FR", None), ("b", None, "female", None, 31, "FR", None)]
    _, _, users, rng, _ = build(spark, events, profiles)
    demo = demographics(users, rng, 30)
    # Last date Feb 15: window [Jan 17, Feb 15]. a: old and inactive; b: new and active; c: active, first seen Jan 1.
    assert rows(demo, "country", "gender", "age_group", "users", "active_users_30d", "new_users_30d") == [
        ("FR", "female", "25-34", 2, 1, 1), ("unknown", "unknown", "unknown", 1, 1, 0),
    ]
