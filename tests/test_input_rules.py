"""Input read as the contract says: sub-second time arithmetic,
numbers stored exactly as sent, every ISO-8601 spelling of an instant, CSV read as CSV."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest

from lakehouse.transforms import silver as T
from lakehouse.transforms.sessions import sessionize
from lakehouse.transforms.common import DateRange, calendar
from lakehouse.transforms.sessions import sessions_daily

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
    got = _events(spark, SUB_SECOND_EVENTS).transform(sessionize(30)).orderBy("user_id", "session_start").collect()
    assert [(r["user_id"], r["events"]) for r in got] == [("u1", 2), ("u1", 2), ("u2", 2)]
    assert [r["duration_s"] for r in got] == [Decimal("600.1"), Decimal("1.34"), Decimal("9.5")]
    assert dict(_events(spark, SUB_SECOND_EVENTS).transform(sessionize(30)).dtypes)["duration_s"] == "decimal(18,6)"


def test_daily_session_seconds_come_from_the_exact_session_lengths(spark):
    sessions = _events(spark, SUB_SECOND_EVENTS).transform(sessionize(30))
    row = sessions_daily(calendar(spark, DateRange(dt.date(2026, 1, 5), dt.date(2026, 1, 5))), sessions, "UTC").collect()[0]
    assert (row["sessions"], row["users"]) == (3, 2)
    assert row["avg_session_seconds"] == pytest.approx(EXACT_TOTAL / 3, abs=1e-9)       # 203.646...
    assert row["avg_time_per_user_seconds"] == pytest.approx(EXACT_TOTAL / 2, abs=1e-9)  # 305.47


def test_total_session_seconds_is_the_exact_sum_of_session_lengths(spark):
    sessions = _events(spark, SUB_SECOND_EVENTS).transform(sessionize(30))
    row = sessions_daily(calendar(spark, DateRange(dt.date(2026, 1, 5), dt.date(2026, 1, 5))), sessions, "UTC").collect()[0]
    assert row["total_session_seconds"] == pytest.approx(EXACT_TOTAL, abs=1e-9)   # 610.94


# ---------------------------------------------------------------- 11b: numbers stored as sent

def test_points_are_whole_numbers_above_zero_as_stored(spark):
    cases = [  # (points sent, reason, points stored)
        (3, None, 3), ("5", None, 5), (4.0, None, 4), (" 7 ", None, 7), ("1e2", None, 100),
        (0.4, "not_whole_points", None), (2.7, "not_whole_points", None), ("2.7", "not_whole_points", None),
        (-2.5, "not_whole_points", None),
        (0, "non_positive_points", None), (-2, "non_positive_points", None), (None, "non_positive_points", None),
        (True, "wrong_type_points", None), ("abc", "wrong_type_points", None), (1e30, "wrong_type_points", None),
        ("NaN", "wrong_type_points", None),
    ]
    lines = [event(i, event="points_earned", properties={"points": p}) for i, (p, _, _) in enumerate(cases)]
    got = parsed_events(spark, lines)
    assert [(c[0], r["_error"]) for c, r in zip(cases, got)] == [(c[0], c[1]) for c in cases]
    assert [r["points"] for r, c in zip(got, cases) if c[1] is None] == [c[2] for c in cases if c[1] is None]


def test_every_numeric_property_is_stored_exactly_as_sent_or_quarantined(spark):
    cases = [  # (properties, reason, (column, value stored))
        ({"amount": "19.99"}, None, ("amount", 19.99)),
        ({"amount": 0}, None, ("amount", 0.0)),
        ({"amount": None}, None, ("amount", None)),          # JSON null: no amount
        ({"amount": True}, "wrong_type_amount", None),       # was stored as 1.0
        ({"amount": "NaN"}, "wrong_type_amount", None),      # was stored as NaN
        ({"amount": "1e999"}, "wrong_type_amount", None),    # was stored as Infinity
        ({"amount": "-3"}, "negative_amount", None),
        ({"quantity": 2.7}, "not_whole_quantity", None),     # was stored as 2
        ({"quantity": "3"}, None, ("quantity", 3)),
        ({"quantity": 3.0}, None, ("quantity", 3)),
        ({"quantity": 3_000_000_000}, "wrong_type_quantity", None),  # does not fit an int
        ({"price": "abc"}, "wrong_type_price", None),        # was kept as null
        ({"price": "12.50"}, None, ("price", 12.5)),
        ({"cart_value": {"v": 1}}, "wrong_type_cart_value", None),
        ({"score": "1d"}, "wrong_type_score", None),         # Spark's cast would read 1.0
        ({"max_score": "0x10"}, "wrong_type_max_score", None),
        ({"progress_pct": "Infinity"}, "wrong_type_progress_pct", None),
        ({"progress_pct": "62.5"}, None, ("progress_pct", 62.5)),
        ({"duration_s": 12.75}, None, ("duration_s", 12.75)),
        ({"duration_s": "1.5E1"}, None, ("duration_s", 15.0)),
    ]
    lines = [event(i, event="purchase", properties=p) for i, (p, _, _) in enumerate(cases)]
    got = parsed_events(spark, lines)
    assert [(c[0], r["_error"]) for c, r in zip(cases, got)] == [(c[0], c[1]) for c in cases]
    assert [(c[2][0], r[c[2][0]]) for c, r in zip(cases, got) if c[2]] == [c[2] for c in cases if c[2]]


# ---------------------------------------------------------------- 11c: ISO-8601 spellings

ACCEPTED_TIMESTAMPS = [  # (ts sent, UTC instant)
    ("2026-01-09T10:00Z", dt.datetime(2026, 1, 9, 10, 0)),                  # reduced precision with a zone
    ("2026-01-09T10:00+05:30", dt.datetime(2026, 1, 9, 4, 30)),
    ("2026-01-09T10:00-0330", dt.datetime(2026, 1, 9, 13, 30)),
    ("2026-01-09T10:00", dt.datetime(2026, 1, 9, 10, 0)),                   # no zone: UTC
    ("2026-01-09T10:00:00+0530", dt.datetime(2026, 1, 9, 4, 30)),           # offset without a colon
    ("2026-01-09T10:00:00+05", dt.datetime(2026, 1, 9, 5, 0)),              # offset in hours
    ("2026-01-09T10:00:00-18:00", dt.datetime(2026, 1, 10, 4, 0)),          # the largest offset
    ("2026-01-09T10:00:00.123456789Z", dt.datetime(2026, 1, 9, 10, 0, 0, 123456)),  # ns kept to µs
    ("2026-01-09T10:00:00.9999999Z", dt.datetime(2026, 1, 9, 10, 0, 0, 999999)),    # cut, not rounded
    ("2026-01-09T10:00:00,5+01:00", dt.datetime(2026, 1, 9, 9, 0, 0, 500000)),      # decimal comma
    ("2026-01-09T10:00:00z", dt.datetime(2026, 1, 9, 10, 0)),               # lower-case z (RFC 3339)
    ("2026-01-09t10:00:00Z", dt.datetime(2026, 1, 9, 10, 0)),               # lower-case t (RFC 3339)
    (" 2026-01-09T10:00:00.1Z ", dt.datetime(2026, 1, 9, 10, 0, 0, 100000)),  # spaces around
    ("2026-01-09 10:00:00+01:00", dt.datetime(2026, 1, 9, 9, 0)),           # a space for T (kept)
    ("2026-01-09T10:00:00", dt.datetime(2026, 1, 9, 10, 0)),
]
REFUSED_TIMESTAMPS = [
    "2026-02-30T10:00:00Z",          # no 30 February
    "2025-02-29T10:00Z",             # not a leap year
    "2026-13-01T10:00Z",             # month 13
    "2026-01-09T24:00:00Z",          # hour 24
    "2026-01-09T10:60Z",             # minute 60
    "2026-01-09T10:00:60Z",          # second 60 (no leap seconds)
    "2026-01-09T10:00:00+19:00",     # offset beyond 18 hours
    "2026-01-09T10:00:00+05:75",     # offset minute 75
    "2026-01-09T10Z",                # hour precision: below the contract's minutes
    "2026-01-09",                    # a date is not an instant
    "20260109T100000Z",              # basic format
    "2026-01-09T10:00:00.1234567890Z",  # ten fraction digits
    "2026-01-09T10:00:00 Z",
    "2026-01-09T10:00:00+5:30",
]


def test_every_extended_iso_8601_spelling_of_an_instant_is_accepted(spark):
    lines = [event(i, ts=ts) for i, (ts, _) in enumerate(ACCEPTED_TIMESTAMPS)]
    got = parsed_events(spark, lines)
    assert [(ts, r["_error"], r["ts"]) for (ts, _), r in zip(ACCEPTED_TIMESTAMPS, got)] == [
        (ts, None, want) for ts, want in ACCEPTED_TIMESTAMPS]


def test_impossible_or_non_extended_timestamps_are_bad_timestamps(spark):
    got = parsed_events(spark, [event(i, ts=ts) for i, ts in enumerate(REFUSED_TIMESTAMPS)])
    assert [(ts, r["_error"]) for ts, r in zip(REFUSED_TIMESTAMPS, got)] == [(ts, "bad_timestamp") for ts in REFUSED_TIMESTAMPS]


def test_profile_timestamps_take_the_same_spellings(spark):
    lines = [json.dumps({"user_id": "p1", "registered_at": "2026-01-02T08:30+01", "updated_at": "2026-01-03T09:15Z"}),
             json.dumps({"user_id": "p2", "updated_at": "2026-02-30T09:15Z"})]
    got = bronze(spark, lines, "file:/landing/users/p.jsonl").transform(T.parse_profiles("s")).orderBy("line_id").collect()
    assert [(r["user_id"], r["_error"], r["registered_at"], r["updated_at"]) for r in got] == [
        ("p1", None, dt.datetime(2026, 1, 2, 7, 30), dt.datetime(2026, 1, 3, 9, 15)),
        ("p2", "bad_timestamp", None, None),
    ]


# ---------------------------------------------------------------- 11a: CSV read as CSV

HEADER = "user_id,registered_at,gender,country,city,updated_at"
MALMO = ['mlu1,2026-03-01T09:00:00Z,F,se,"Malmö', 'Centrum",2026-03-01T09:00:00Z']  # the record


def test_csv_records_follow_rfc_4180():
    lines = ["\ufeff" + HEADER, *MALMO,
             'u2,,,,"The ""Big"" Apple, NY",',        # doubled quotes and a comma inside quotes
             'u3,, "F" ,,"a',                          # spaces around a quoted field; a break...
             '',                                       # ...an empty line inside the quotes...
             'b",',                                    # ...and the record ends here
             'u4,,,,ab"c,',                            # a quote inside an unquoted field
             'u5,,,,"x"y,',                            # text after a closing quote
             'u6,,,,"never closed', 'u7,,,,,']         # open to the end of the file
    assert T.csv_records(lines) == [
        (0, 1, HEADER.split(","), None),
        (1, 2, ["mlu1", "2026-03-01T09:00:00Z", "F", "se", "Malmö\nCentrum", "2026-03-01T09:00:00Z"], None),
        (3, 1, ["u2", "", "", "", 'The "Big" Apple, NY', ""], None),
        (4, 3, ["u3", "", "F", "", "a\n\nb", ""], None),
        (7, 1, None, "csv_bad_quote"),
        (8, 1, None, "csv_bad_quote"),
        (9, 2, None, "csv_unclosed_quote"),
    ]


def test_a_file_without_quotes_splits_into_the_same_records_as_one_with_quotes(spark):
    """Quote-free files are split in Spark, files holding a quote by `csv_records` (pandas):
    the records, fields and reasons are the same either way."""
    plain = ["\ufeff" + HEADER, "u1, Ann ,,se,,", "", "\ufeffu2,,,,,", "u3,x"]   # a BOM only starts the file
    quoted = [HEADER, *MALMO, 'u6,,,,ab"c,', "u7,,,,Oslo,"]
    files = {"file:/landing/users/a.csv": (plain, 10), "file:/landing/users/b.csv": (quoted, 0)}
    rows = [(line, f, dt.datetime(2026, 1, 10, 11), start + i, 1, INGESTED)
            for f, (lines, start) in files.items() for i, line in enumerate(lines)]
    got = (spark.createDataFrame(rows, BRONZE_SCHEMA).transform(T.with_raw_bytes).transform(T.csv_file_records)
           .orderBy("source_file", "line_id").collect())
    assert [(r["line_id"], r["_lines"], r["_fields"], r["_csv_reason"]) for r in got if r["source_file"].endswith("a.csv")] == [
        (10, 1, HEADER.split(","), None), (11, 1, ["u1", "Ann", "", "se", "", ""], None), (12, 1, [""], None),
        (13, 1, ["\ufeffu2", "", "", "", "", ""], None), (14, 1, ["u3", "x"], None)]
    for f, (lines, start) in files.items():   # the same records as csv_records gives, both routes
        expected = [(start + first, n, [x.strip(" ") for x in fields] if fields else None, reason)
                    for first, n, fields, reason in T.csv_records(lines)]
        assert [(r["line_id"], r["_lines"], r["_fields"], r["_csv_reason"]) for r in got if r["source_file"] == f] == expected
    assert [r["value"] for r in got if r["source_file"].endswith("a.csv")] == plain   # each line kept verbatim


def _python_rows_sent(df) -> int:
    """Bytes a collected frame's executed plan sent to Python workers (pandas functions), from
    the Python nodes' SQL metrics (adaptive query stages followed)."""
    def nodes(p):
        yield p
        for child in [p.plan()] if "QueryStage" in p.nodeName() else [p.executedPlan()] if p.nodeName() == "AdaptiveSparkPlan" else []:
            yield from nodes(child)
        it = p.children().iterator()
        while it.hasNext():
            yield from nodes(it.next())
    return sum(n.metrics().apply("pythonDataSent").value() for n in nodes(df._jdf.queryExecution().executedPlan())
               if n.metrics().contains("pythonDataSent"))


def test_a_batch_without_quotes_sends_no_csv_line_to_python(spark):
    rows = [(line, "file:/landing/users/a.csv", dt.datetime(2026, 1, 10, 11), i, 1, INGESTED)
            for i, line in enumerate([HEADER, "u1,,,,Lund,"])]
    plain = spark.createDataFrame(rows, BRONZE_SCHEMA).transform(T.with_raw_bytes).transform(T.csv_file_records)
    assert len(plain.collect()) == 2 and _python_rows_sent(plain) == 0
    quoted = spark.createDataFrame(rows + [(MALMO[0], "file:/landing/users/b.csv", dt.datetime(2026, 1, 10, 11), 9, 1, INGESTED)],
                                   BRONZE_SCHEMA).transform(T.with_raw_bytes).transform(T.csv_file_records)
    assert len(quoted.collect()) == 3 and _python_rows_sent(quoted) > 0   # the file with a quote goes to pandas


def _profiles(spark, lines, name="updates.csv"):
    return bronze(spark, lines, f"file:/landing/users/{name}").transform(T.parse_profiles("s")).orderBy("line_id")


def test_a_quoted_line_break_keeps_one_csv_profile_whole(spark):
    got = _profiles(spark, [HEADER, *MALMO]).collect()
    assert [(r["user_id"], r["city"], r["country"], r["updated_at"], r["_error"], r["value"]) for r in got] == [
        ("mlu1", "Malmö\nCentrum", "SE", dt.datetime(2026, 3, 1, 9), None, "\n".join(MALMO)),
    ]                                                 # one profile, no user 'Centrum"'
    assert [r["_lines"] for r in got] == [2]


def test_doubled_quotes_in_a_csv_field_are_one_quote(spark):
    got = _profiles(spark, [HEADER, 'u2,,,,"The ""Big"" Apple",']).collect()
    assert [(r["user_id"], r["city"], r["_error"]) for r in got] == [("u2", 'The "Big" Apple', None)]


def test_a_broken_csv_record_is_quarantined_whole_with_its_reason(spark):
    lines = [HEADER, "u1,,,,Lund,", 'u4,,,,ab"c,', "u8,,,,Paris, 15e,", 'u6,,,,"never closed', "u7,,,,Oslo,"]
    parsed = _profiles(spark, lines)
    got = parsed.collect()
    assert [(r["user_id"], r["_error"]) for r in got] == [
        ("u1", None), (None, "csv_bad_quote"), (None, "csv_field_count"), (None, "csv_unclosed_quote")]
    assert [r["_lines"] for r in got] == [1, 1, 1, 2]
    q = T.quarantined(parsed, "users").orderBy("reason").collect()
    assert [(r["reason"], r["value"]) for r in q] == [
        ("csv_bad_quote", lines[2]), ("csv_field_count", lines[3]), ("csv_unclosed_quote", lines[4] + "\n" + lines[5])]


def test_every_profile_line_is_accounted_for_once(spark, cfg, tmp_path):
    """lines read = lines of valid records + header lines + lines of quarantined records."""
    from lakehouse.silver import SilverResult, _profiles_batch
    from lakehouse.tables import Lake

    lines = [HEADER, *MALMO, 'u6,,,,"never closed', "u7,,,,Oslo,"]
    lake = Lake(str(tmp_path / "lake"))
    lake.write(bronze(spark, lines, "file:/landing/users/updates.csv"), "bronze.users")
    result = SilverResult()
    _profiles_batch(spark, lake, cfg, 1, result)
    assert (result.profiles_valid, result.profile_headers, sum(result.quarantined.values()),
            result.profile_continuation_lines) == (1, 1, 1, 2)    # 1 + 1 + 1 + 2 = 5 lines
    assert [r["user_id"] for r in lake.read(spark, "silver.users").collect()] == ["mlu1"]
    assert [r["value"] for r in lake.read(spark, "silver.quarantine").collect()] == ['u6,,,,"never closed\nu7,,,,Oslo,']


def test_forget_erases_every_line_of_a_multi_line_csv_record(spark, tmp_path):
    from lakehouse.maintenance import _erase
    from lakehouse.tables import Lake

    lake = Lake(str(tmp_path / "lake"))
    lines = [HEADER, "u7,,,,Oslo,", *MALMO, "u8,,,,Lund,"]
    lake.write(bronze(spark, lines, "file:/landing/users/updates.csv"), "bronze.users")
    _erase(spark, lake, "bronze.users", ["mlu1"])
    kept = [r["value"] for r in lake.read(spark, "bronze.users").orderBy("line_id").collect()]
    assert kept == [HEADER, "u7,,,,Oslo,", "u8,,,,Lund,"]   # 'Centrum",...' (the record's second line) went too
