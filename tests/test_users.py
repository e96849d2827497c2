"""The user dimension's rules of metrics.md (transforms/users.py) on tiny hand-computed data."""

from __future__ import annotations

import datetime as dt

import pytest

from lakehouse.transforms.users import user_activity_daily

from gold_rows import D, at, build, ev, rows


def test_first_seen_date_is_the_earlier_of_first_activity_and_registration(spark):
    events = [ev("a", at(5)), ev("b", at(5)), ev("c", at(5))]
    profiles = [
        ("a", dt.datetime(2026, 1, 2, 9), None, None, None, None, None),   # registered before first activity
        ("b", dt.datetime(2026, 1, 9, 9), None, None, None, None, None),   # registered after: activity wins
        ("d", dt.datetime(2026, 1, 3, 9), None, None, None, None, None),   # registered, never active
    ]                                                                        # c: no profile
    _, _, users, _, _ = build(spark, events, profiles)
    assert rows(users, "user_id", "first_seen_date") == [
        ("a", D(2026, 1, 2)), ("b", D(2026, 1, 5)), ("c", D(2026, 1, 5)), ("d", D(2026, 1, 3)),
    ]


@pytest.mark.parametrize("birth,expected_age,expected_group", [
    (D(2008, 1, 31), 18, "18-24"),   # 18th birthday on the lake's last date: 18
    (D(2008, 2, 1), 17, "<18"),      # one day short
    (D(2001, 1, 31), 25, "25-34"),
    (D(1961, 2, 1), 64, "55-64"),
    (D(1961, 1, 31), 65, "65+"),
])
def test_age_group_on_the_birthday_boundary(spark, birth, expected_age, expected_group):
    events = [ev("u", at(31))]
    profiles = [("u", None, "F", birth, None, None, None)]
    _, _, users, _, _ = build(spark, events, profiles)
    r = users.collect()[0]
    assert (r["age"], r["age_group"]) == (expected_age, expected_group)


def test_profile_age_used_without_birth_date_and_unknown_without_either(spark):
    events = [ev("a", at(1)), ev("b", at(1)), ev("c", at(1))]
    profiles = [("a", None, None, None, 44, None, None), ("b", None, None, None, None, None, None)]
    _, _, users, _, _ = build(spark, events, profiles)
    assert rows(users, "user_id", "age", "age_group", "gender") == [
        ("a", 44, "35-44", "unknown"), ("b", None, "unknown", "unknown"), ("c", None, "unknown", "unknown"),
    ]


def test_country_from_profile_else_first_event_carrying_one(spark):
    events = [ev("a", at(1), country=None), ev("a", at(2), country="DE"), ev("a", at(3), country="FR"),
              ev("b", at(1), country="ES"), ev("c", at(1))]
    profiles = [("b", None, None, None, None, "PT", None)]
    _, _, users, _, _ = build(spark, events, profiles)
    assert rows(users, "user_id", "country") == [("a", "DE"), ("b", "PT"), ("c", "unknown")]


def test_user_activity_device_is_the_most_used_with_alphabetical_ties(spark):
    events = [ev("a", at(1, 9), device="web"), ev("a", at(1, 10), device="mobile"), ev("a", at(1, 11), device="mobile"),
              ev("b", at(1, 9), device="web"), ev("b", at(1, 10), device="desktop"),
              ev("c", at(1, 9), device=None)]
    e, days, users, rng, cal = build(spark, events)
    uad = user_activity_daily(days, users)
    assert rows(uad, "user_id", "device", "events", "is_new") == [
        ("a", "mobile", 3, True), ("b", "desktop", 2, True), ("c", "unknown", 1, True),
    ]
