"""Silver rules of events.md: validation reasons, typing, normalisation, dedup, profiles, sessions."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter

import pyspark.sql.functions as F
from chispa import assert_df_equality
from deltalake import DeltaTable

from lakehouse import bronze as bronze_step
from lakehouse import pipeline, silver
from lakehouse.tables import Lake
from lakehouse.transforms import silver as T
from lakehouse.transforms.sessions import sessionize

INGESTED = dt.datetime(2026, 1, 10, 12, 0, 0)
BRONZE_SCHEMA = "value string, source_file string, file_modified_at timestamp, line_id long, batch_id long, ingested_at timestamp"


def bronze(spark, lines, source="file:/landing/events/a.jsonl", batch=1, start_id=0, modified=None):
    """Bronze rows for raw lines, in order."""
    modified = modified or dt.datetime(2026, 1, 10, 11, 0, 0)
    rows = [(line, source, modified, start_id + i, batch, INGESTED) for i, line in enumerate(lines)]
    return spark.createDataFrame(rows, BRONZE_SCHEMA)


def event(**over):
    base = {"event_id": "e1", "event": "page_view", "ts": "2026-01-09T10:00:00Z", "user_id": "u1",
            "properties": {"page": "/home"}, "context": {"device": "Mobile", "country": "fr"}}
    base.update(over)
    return json.dumps({k: v for k, v in base.items() if v is not ...})


def reasons(spark, lines):
    parsed = bronze(spark, lines).transform(T.parse_events()).orderBy("line_id")
    return [r["_error"] for r in parsed.collect()]


def test_each_quarantine_reason_is_named(spark):
    lines = [
        event(),                                         # valid
        "not json at all",                               # not_json
        "[1, 2, 3]",                                     # not_an_object
        event(event_id=...),                             # missing_event_id
        event(event_id=123),                             # wrong_type_event_id
        event(user_id=""),                               # missing_user_id (blank)
        event(event=None),                               # missing_event (null)
        event(ts="yesterday"),                           # bad_timestamp
        event(ts="2026-03-01T00:00:00Z"),                # future_timestamp (> ingestion + 1 day)
        event(event="purchase", properties={"amount": -5, "payment_status": "success"}),  # negative_amount
        event(event="points_earned", properties={"points": 0}),    # non_positive_points
        event(event="points_redeemed", properties={}),             # non_positive_points (missing)
        "x" * 1_048_577,                                 # line_too_long
        "   ",                                           # empty_line
        event(properties="oops"),                        # wrong_type_properties
        "\ufeff" + event(event_id="bom"),                # valid: a BOM is ignored
        event(ts="2026-01-09T10:00:00+05:30", event_id="e2"),  # valid with offset
        event(ts="2026-01-09 10:00:00", event_id="e3"),  # valid, no offset = UTC
        event(event_id="e4", extra_field={"kept": True}),  # unknown extra field: valid
        event(event="new_event_name", event_id="e5"),    # unknown event name: valid
    ]
    assert reasons(spark, lines) == [
        None, "not_json", "not_an_object", "missing_event_id", "wrong_type_event_id", "missing_user_id",
        "missing_event", "bad_timestamp", "future_timestamp", "negative_amount", "non_positive_points",
        "non_positive_points", "line_too_long", "empty_line", "wrong_type_properties",
        None, None, None, None, None,
    ]


def test_timestamps_are_utc_instants_whatever_the_offset(spark):
    lines = [event(event_id="a", ts="2026-01-09T10:00:00+05:30"), event(event_id="b", ts="2026-01-09T10:00:00"),
             event(event_id="c", ts="2026-01-09T10:00:00.250-04:00")]
    got = bronze(spark, lines).transform(T.parse_events()).orderBy("event_id").select("ts").collect()
    assert [r["ts"] for r in got] == [dt.datetime(2026, 1, 9, 4, 30), dt.datetime(2026, 1, 9, 10, 0),
                                      dt.datetime(2026, 1, 9, 14, 0, 0, 250000)]


def test_device_lowercased_country_uppercased_properties_typed(spark):
    line = event(event="purchase", properties={"amount": "12.5", "payment_status": "success", "order_id": "o1",
                                                "items": [{"sku": 1}], "coupon": "X"},
                 context={"device": " Desktop ", "country": "de", "city": "Berlin"})
    row = bronze(spark, [line]).transform(T.parse_events()).collect()[0]
    assert (row["device"], row["country"], row["city"]) == ("desktop", "DE", "Berlin")
    assert (row["amount"], row["payment_status"], row["order_id"]) == (12.5, "success", "o1")
    assert json.loads(row["properties"])["coupon"] == "X"  # unknown keys are kept


def test_quarantine_keeps_the_line_as_it_arrived_with_its_file(spark):
    parsed = bronze(spark, ["{broken", event()]).transform(T.parse_events())
    q = T.quarantined(parsed, "events").collect()
    assert [(r["feed"], r["reason"], r["value"], r["source_file"]) for r in q] == [
        ("events", "not_json", "{broken", "file:/landing/events/a.jsonl")
    ]


def test_text_after_a_lines_json_object_makes_the_line_not_json(spark):
    # Spark's parse_json alone keeps the first value and drops the rest: e2 would vanish unseen.
    glued = [event() + " junk", event() + event(event_id="e2"), event() + ", " + event(event_id="e2"), event() + "}",
             event() + "]", event() + "//", event() + " \t\r"]
    assert reasons(spark, glued) == ["not_json"] * 6 + [None]
    profiles = [profile(user_id="u1") + profile(user_id="u2"), profile(user_id="u3") + " x", profile(user_id="u4") + " "]
    parsed = bronze(spark, profiles, source="file:/landing/users/a.jsonl").transform(T.parse_profiles("salt"))
    assert [r["_error"] for r in parsed.orderBy("line_id").collect()] == ["not_json", "not_json", None]


def test_duplicates_keep_the_first_copy_within_a_batch(spark):
    lines = [event(event_id="d", user_id="first"), event(event_id="d", user_id="second")]
    valid = T.valid_events(bronze(spark, lines).transform(T.parse_events()))
    got = T.first_copy_per_event_id(valid).select("event_id", "user_id").collect()
    assert [tuple(r) for r in got] == [("d", "first")]


def test_duplicates_across_batches_are_dropped(spark):
    first = T.first_copy_per_event_id(T.valid_events(bronze(spark, [event(event_id="x")], batch=1).transform(T.parse_events())))
    later = T.first_copy_per_event_id(T.valid_events(
        bronze(spark, [event(event_id="x"), event(event_id="y")], batch=2).transform(T.parse_events())
    ))
    kept = later.transform(T.drop_known_event_ids(first)).select("event_id")
    assert_df_equality(kept, spark.createDataFrame([("y",)], "event_id string"), ignore_nullable=True)


def test_gender_is_normalised_case_insensitively(spark):
    raw = ["F", "female", "Woman", "w", "M", "MALE", "man", "Other", "non-binary", "NonBinary", "nb", "X", "diverse",
           "", None, "unknown", "prefer not"]
    df = spark.createDataFrame([(g,) for g in raw], "g string").select(T.normalise_gender(F.col("g")).alias("gender"))
    assert [r["gender"] for r in df.collect()] == (["female"] * 4 + ["male"] * 3 + ["other"] * 6 + ["unknown"] * 4)


def profile(**fields):
    return json.dumps(fields)


def test_latest_profile_wins_whatever_the_arrival_order(spark):
    newer = profile(user_id="u1", city="Paris", updated_at="2026-01-05T00:00:00Z", email="A@x.org")
    older = profile(user_id="u1", city="Lyon", updated_at="2026-01-01T00:00:00Z")
    batch1 = bronze(spark, [newer], source="file:/landing/users/p1.jsonl", batch=1).transform(T.parse_profiles("salt"))
    empty = spark.createDataFrame([], ", ".join(f"{c} {t}" for c, t in [
        ("user_id", "string"), ("registered_at", "timestamp"), ("gender", "string"), ("birth_date", "date"), ("age", "int"),
        ("country", "string"), ("city", "string"), ("signup_channel", "string"), ("email_hash", "string"),
        ("updated_at", "timestamp"), ("source_file", "string"), ("batch_id", "long")]))
    after1 = T.latest_profiles(empty, batch1)
    batch2 = bronze(spark, [older], source="file:/landing/users/p2.jsonl", batch=2).transform(T.parse_profiles("salt"))
    after2 = T.latest_profiles(after1, batch2).collect()
    assert [(r["user_id"], r["city"]) for r in after2] == [("u1", "Paris")]


def test_email_is_only_kept_as_a_salted_hash(spark):
    import hashlib

    parsed = bronze(spark, [profile(user_id="u1", email=" Someone@Example.org ")]).transform(T.parse_profiles("pepper"))
    row = parsed.collect()[0]
    assert "email" not in parsed.columns
    assert row["email_hash"] == hashlib.sha256(b"peppersomeone@example.org").hexdigest()


def test_csv_profiles_use_their_header_and_skip_it(spark):
    lines = ["user_id,gender,age,updated_at,city", 'u9,M,34,2026-01-01T00:00:00Z,"Paris, 15e"', ",F,20,2026-01-01T00:00:00Z,Lyon"]
    parsed = bronze(spark, lines, source="file:/landing/users/u.csv").transform(T.parse_profiles("s")).orderBy("line_id")
    got = [(r["user_id"], r["gender"], r["age"], r["city"], r["_error"]) for r in parsed.collect()]
    assert got == [("u9", "male", 34, "Paris, 15e", None), (None, "female", 20, "Lyon", "missing_user_id")]


def test_sessions_split_after_30_minutes_and_keep_client_session_ids_whole(spark):
    t0 = dt.datetime(2026, 1, 1, 10, 0)
    rows = [
        ("u1", None, t0, "page_view"),
        ("u1", None, t0 + dt.timedelta(minutes=30), "page_view"),      # gap of exactly 30 min: same session
        ("u1", None, t0 + dt.timedelta(minutes=61), "page_view"),      # gap of 31 min: new session
        ("u1", None, t0 + dt.timedelta(minutes=62), "app_uninstall"),  # not active: ignored
        ("u2", "s1", t0, "page_view"),
        ("u2", "s1", t0 + dt.timedelta(hours=3), "page_view"),         # same client session despite the gap
    ]
    events = spark.createDataFrame(rows, "user_id string, session_id string, ts timestamp, event string")
    got = events.transform(sessionize(30)).orderBy("user_id", "session_start")
    assert [(r["user_id"], r["events"], r["duration_s"], r["is_derived"]) for r in got.collect()] == [
        ("u1", 2, 1800, True), ("u1", 1, 0, True), ("u2", 2, 10800, False),
    ]


def test_lines_that_are_not_utf8_are_quarantined_with_their_original_bytes(spark):
    raw = b'{"event_id": "x", "user": "caf\xe9"}'
    rows = [(raw.decode("utf-8", "replace"), "file:/l/e.jsonl", None, 0, 1, INGESTED, raw),
            (event(), "file:/l/e.jsonl", None, 1, 1, INGESTED, None)]
    df = spark.createDataFrame(rows, BRONZE_SCHEMA + ", value_bytes binary")
    q = T.quarantined(df.transform(T.parse_events()), "events").collect()
    assert [(r["reason"], bytes(r["value_bytes"])) for r in q] == [("not_utf8", raw)]


def test_a_small_batch_cuts_sessions_with_code_generation_once_silver_events_outgrows_the_small_run_limit(
        spark, cfg, tmp_path, monkeypatch):
    """Silver's small-run settings follow the bytes of the batch it parses; the sessions step scans
    silver.events whole, so above `spark.small_runs.gold_max_events` rows it runs with
    `spark.small_runs.whole_table_conf` (code generation back on, adaptive execution still off)."""
    landing, lake = tmp_path / "landing", Lake(str(tmp_path / "lake"))
    (landing / "events").mkdir(parents=True)
    seen, real = [], silver._write_sessions

    def spy(session, *args, **kwargs):
        seen.append((session.conf.get("spark.sql.codegen.wholeStage"), session.conf.get("spark.sql.adaptive.enabled")))
        return real(session, *args, **kwargs)

    monkeypatch.setattr(silver, "_write_sessions", spy)
    small = cfg["spark"]["small_runs"]
    for name, limit in (("a.jsonl", 3), ("b.jsonl", 2)):  # silver.events: 2 rows, then 4
        (landing / "events" / name).write_text(event(event_id=f"{name}1") + "\n" + event(event_id=f"{name}2") + "\n")
        bronze_step.ingest(spark, lake, str(landing))
        settings = {**cfg, "spark": {**cfg["spark"], "small_runs": {**small, "gold_max_events": limit}}}
        pipeline.run(spark, settings, str(landing), lake.root, only="silver", progress=None, register=False)
    assert seen == [("false", "false"), ("true", "false")]
    assert spark.conf.get("spark.sql.codegen.wholeStage") == "true"  # the session's own value once the layer ends


def test_sessions_are_cut_again_whole_when_the_gap_or_excluded_events_change(spark, cfg, tmp_path):
    """silver.sessions keeps no session cut with other settings: the next batch (or a full refresh)
    cuts every user's sessions again, not only those its events reach."""
    landing, lake = tmp_path / "landing", Lake(str(tmp_path / "lake"))
    (landing / "events").mkdir(parents=True)

    def land(name: str, *events: tuple[str, str, str]) -> None:
        (landing / "events" / name).write_text("".join(event(event_id=i, user_id=u, ts=ts) + "\n" for i, u, ts in events))

    def sessions_per_user() -> dict:
        return dict(Counter(r["user_id"] for r in DeltaTable(lake.rs_uri("silver.sessions")).to_pyarrow_table().to_pylist()))

    def run(settings: dict) -> None:
        bronze_step.ingest(spark, lake, str(landing))
        silver.process(spark, lake, settings, bronze_step.committed_batches(lake))

    gap10 = {**cfg, "session_gap_minutes": 10}
    land("a.jsonl", ("e1", "u1", "2026-01-09T10:00:00Z"), ("e2", "u1", "2026-01-09T10:20:00Z"),
         ("e3", "u2", "2026-01-09T10:00:00Z"), ("e4", "u2", "2026-01-09T10:15:00Z"))
    run(cfg)  # 30 minutes
    assert sessions_per_user() == {"u1": 1, "u2": 1} and not silver.sessions_stale(spark, lake, cfg)
    assert silver.sessions_stale(spark, lake, gap10)
    land("b.jsonl", ("e5", "u1", "2026-01-09T12:00:00Z"))
    run(gap10)  # u2 has no new event, yet its session is cut again with the new gap
    assert sessions_per_user() == {"u1": 3, "u2": 2} and not silver.sessions_stale(spark, lake, gap10)
    assert not silver.refresh_sessions(spark, lake, gap10)
    pipeline.run(spark, cfg, str(landing), lake.root, only="silver", full_refresh=True, progress=None, register=False)
    assert sessions_per_user() == {"u1": 2, "u2": 1}  # `lakehouse run --full-refresh`: back to 30 minutes
