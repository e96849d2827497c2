"""Sources other than the landing folder (docs/sources.md): Segment calls with identity, CSV exports,
config and flags, bad input, and one seed giving the same gold in every shape."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from deltalake import DeltaTable

from lakehouse import bronze, pipeline, silver
from lakehouse.session import layer_settings, tuned
from lakehouse.sources import Source, SourceError, from_config, from_run, parse_flag, redact
from lakehouse.tables import GOLD, Lake

ROOT = Path(__file__).resolve().parent.parent
T0 = "2026-01-05T10:00:00Z"


def call(type_, mid, ts=T0, **fields) -> dict:
    return {"type": type_, "messageId": mid, "timestamp": ts, **fields}


def write_calls(folder: Path, name: str, calls: list, gz: bool = False) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    text = "\n".join(c if isinstance(c, str) else json.dumps(c) for c in calls) + "\n"
    if gz:
        with gzip.open(folder / f"{name}.jsonl.gz", "wt", encoding="utf-8") as fh:
            fh.write(text)
    else:
        (folder / f"{name}.jsonl").write_text(text)


def to_silver(spark, cfg, sources: list[Source], lake: Path) -> None:
    """Bronze and silver of one run, with the settings a pipeline run gives each (gold is not needed
    to check silver's rules)."""
    at = Lake(str(lake))
    with tuned(spark, layer_settings(cfg, at, "bronze")):
        bronze.ingest(spark, at, sources, cfg["small_writes"]["bronze_max_bytes"])
    with tuned(spark, layer_settings(cfg, at, "silver")):
        silver.process(spark, at, cfg, bronze.committed_batches(at))


def rows(lake: Path, table: str, *columns: str) -> list[tuple]:
    t = DeltaTable(str(lake / table.replace(".", "/"))).to_pyarrow_table(columns=list(columns)).to_pylist()
    return sorted(tuple(r[c] for c in columns) for r in t)


def seg(path: Path, name: str = "web") -> list[Source]:
    return [Source(name=name, kind="segment", uri=str(path))]


# ---------------------------------------------------------------- Segment calls


def test_segment_track_page_screen_and_batch_bodies_map_onto_the_contract(spark, cfg, tmp_path):
    calls = [
        call("page", "m1", anonymousId="a1", name="Home", properties={"path": "/"},
             context={"page": {"url": "https://x/", "referrer": "https://google.com"}, "locale": "en-US"}),
        call("track", "m2", userId="u1", event="Product Viewed", properties={"item_id": "p1", "price": 19.99},
             context={"device": {"type": "android"}, "os": {"name": "Android"}, "app": {"version": "2.1"},
                      "location": {"country": "de", "city": "Berlin"}}),
        json.dumps({"batch": [call("screen", "m3", userId="u1", name="Settings"),
                              call("track", "m4", userId="u1", event="Order Completed", originalTimestamp=T0,
                                   properties={"order_id": "o1", "amount": "5.5", "currency": "EUR"})]}),
        call("track", "m5", userId="u1", event="quiz_attempt", timestamp=None, receivedAt="2026-01-05T11:00:00Z"),
    ]
    write_calls(tmp_path / "src", "c", calls, gz=True)
    to_silver(spark, cfg, seg(tmp_path / "src"), tmp_path / "lake")
    got = rows(tmp_path / "lake", "silver.events", "event_id", "event", "user_id", "page", "device", "country",
               "city", "os", "app_version", "referrer", "item_id", "price", "amount", "currency")
    assert got == [
        ("m1", "page_view", "a1", "Home", "web", "US", None, None, None, "https://google.com", None, None, None, None),
        ("m2", "item_view", "u1", None, "mobile", "DE", "Berlin", "Android", "2.1", None, "p1", 19.99, None, None),
        ("m3", "page_view", "u1", "Settings", None, None, None, None, None, None, None, None, None, None),
        ("m4", "purchase", "u1", None, None, None, None, None, None, None, None, None, 5.5, "EUR"),
        ("m5", "quiz_attempt", "u1", None, None, None, None, None, None, None, None, None, None, None),
    ]
    assert rows(tmp_path / "lake", "bronze.events", "source", "source_kind")[0] == ("web", "segment")


def test_segment_calls_that_do_not_map_are_quarantined_with_their_raw_line(spark, cfg, tmp_path):
    weird = json.dumps(call("weird", "m2", userId="u1"))
    glued = json.dumps(call("track", "m5", userId="u1", event="x")) + json.dumps(call("track", "m6", userId="u1", event="y"))
    write_calls(tmp_path / "src", "c", ["not json", weird, call("track", "m3", event="x"),
                                        call("group", "m4", userId="u1", groupId="g1"), glued])
    to_silver(spark, cfg, seg(tmp_path / "src"), tmp_path / "lake")
    assert rows(tmp_path / "lake", "silver.quarantine", "reason", "value") == [
        ("missing_user_id", json.dumps(call("track", "m3", event="x"))),
        ("not_json", "not json"), ("not_json", glued), ("unknown_call_type", weird)]
    assert not (tmp_path / "lake" / "silver" / "events").exists() or rows(tmp_path / "lake", "silver.events", "event_id") == []


def test_identify_traits_become_a_profile_and_the_latest_wins(spark, cfg, tmp_path):
    traits = {"email": " Ann@X.com", "createdAt": "2025-12-01T08:00:00Z", "gender": "F", "birthday": "1990-05-01T00:00:00Z",
              "address": {"country": "fr", "city": "Lyon"}, "signup_channel": "ads"}
    write_calls(tmp_path / "src", "c", [
        call("identify", "i1", userId="u1", ts="2026-01-05T10:00:00Z", traits=traits),
        call("identify", "i2", userId="u1", ts="2026-01-04T10:00:00Z", traits={"gender": "M"}),  # older: loses
    ])
    to_silver(spark, cfg, seg(tmp_path / "src"), tmp_path / "lake")
    got = rows(tmp_path / "lake", "silver.users", "user_id", "gender", "birth_date", "country", "city", "signup_channel")
    assert [g[:2] + (str(g[2]),) + g[3:] for g in got] == [("u1", "female", "1990-05-01", "FR", "Lyon", "ads")]


def test_an_anonymous_id_tied_in_the_same_batch_gives_its_events_to_the_user(spark, cfg, tmp_path):
    write_calls(tmp_path / "src", "c", [
        call("page", "m1", anonymousId="a1", name="Home"),
        call("track", "m2", anonymousId="a1", event="signup", ts="2026-01-05T10:01:00Z"),
        call("identify", "i1", userId="u1", anonymousId="a1", ts="2026-01-05T10:02:00Z"),
        call("page", "m3", anonymousId="a9", name="Home"),  # never tied: a user of its own
    ])
    to_silver(spark, cfg, seg(tmp_path / "src"), tmp_path / "lake")
    assert rows(tmp_path / "lake", "silver.events", "event_id", "user_id") == [("m1", "u1"), ("m2", "u1"), ("m3", "a9")]
    assert rows(tmp_path / "lake", "silver.sessions", "user_id") == [("a9",), ("u1",)]
    assert rows(tmp_path / "lake", "silver.identities", "anonymous_id", "user_id", "moved_events") == [("a1", "u1", 0)]


def test_an_anonymous_id_tied_in_a_later_batch_moves_its_events_and_sessions_to_the_user(spark, cfg, tmp_path):
    src = tmp_path / "src"
    write_calls(src, "day1", [call("page", "m1", anonymousId="a1", name="Home"),
                              call("track", "m2", userId="u1", event="signup", ts="2026-01-05T12:00:00Z")])
    to_silver(spark, cfg, seg(src), tmp_path / "lake")
    assert rows(tmp_path / "lake", "silver.sessions", "user_id") == [("a1",), ("u1",)]
    write_calls(src, "day2", [call("alias", "al1", previousId="a1", userId="u1", ts="2026-01-06T09:00:00Z")])
    to_silver(spark, cfg, seg(src), tmp_path / "lake")
    assert rows(tmp_path / "lake", "silver.events", "event_id", "user_id", "batch_id") == [("m1", "u1", 2), ("m2", "u1", 1)]
    assert rows(tmp_path / "lake", "silver.sessions", "user_id") == [("u1",), ("u1",)]
    assert rows(tmp_path / "lake", "silver.identities", "anonymous_id", "user_id", "batch_id", "moved_events") == [("a1", "u1", 2, 1)]


def test_an_anonymous_id_claimed_by_two_users_stays_with_the_first_tie(spark, cfg, tmp_path):
    src = tmp_path / "src"
    write_calls(src, "day1", [
        call("page", "m1", anonymousId="a1", name="Home"), call("page", "m2", anonymousId="a2", name="Home"),
        # within one batch the earliest call wins, whatever the line order
        call("identify", "i2", userId="u2", anonymousId="a2", ts="2026-01-05T11:00:00Z"),
        call("identify", "i1", userId="u1", anonymousId="a2", ts="2026-01-05T10:30:00Z"),
        call("identify", "i3", userId="u1", anonymousId="a1", ts="2026-01-05T10:30:00Z"),
    ])
    to_silver(spark, cfg, seg(src), tmp_path / "lake")
    write_calls(src, "day2", [call("alias", "al1", previousId="a1", userId="u3", ts="2026-01-04T09:00:00Z"),
                              call("page", "m3", anonymousId="a1", name="Back", ts="2026-01-06T09:00:00Z")])
    to_silver(spark, cfg, seg(src), tmp_path / "lake")  # a later batch's claim is ignored, even if dated earlier
    assert rows(tmp_path / "lake", "silver.events", "event_id", "user_id") == [("m1", "u1"), ("m2", "u1"), ("m3", "u1")]


def test_alias_chains_are_followed_and_a_cycle_is_ignored(spark, cfg, tmp_path):
    src = tmp_path / "src"
    write_calls(src, "day1", [call("page", "m1", anonymousId="a", name="Home"),
                              call("alias", "al1", previousId="a", userId="b")])
    to_silver(spark, cfg, seg(src), tmp_path / "lake")
    write_calls(src, "day2", [call("page", "m2", userId="b", name="Home", ts="2026-01-06T09:00:00Z"),
                              call("alias", "al2", previousId="b", userId="c", ts="2026-01-06T09:00:00Z"),
                              call("alias", "al3", previousId="c", userId="a", ts="2026-01-06T09:30:00Z")])  # a cycle
    to_silver(spark, cfg, seg(src), tmp_path / "lake")
    assert rows(tmp_path / "lake", "silver.events", "event_id", "user_id") == [("m1", "c"), ("m2", "c")]
    assert rows(tmp_path / "lake", "silver.identities", "anonymous_id", "user_id") == [("a", "b"), ("b", "c")]


def test_a_late_tie_rebuilds_gold_and_equals_one_run_over_everything(spark, cfg, tmp_path):
    src, once = tmp_path / "src", tmp_path / "once"
    day1 = [call("page", "m1", anonymousId="a1", name="Home", ts="2026-01-05T10:00:00Z"),
            call("track", "m2", anonymousId="a1", event="item_view", ts="2026-01-05T10:05:00Z"),
            call("track", "m3", userId="u2", event="signup", ts="2026-01-05T11:00:00Z")]
    day2 = [call("track", "m4", userId="u1", event="signup", ts="2026-01-06T09:00:00Z"),
            call("identify", "i1", userId="u1", anonymousId="a1", ts="2026-01-06T09:00:00Z", traits={"gender": "f"})]
    write_calls(src, "day1", day1)
    pipeline.run(spark, cfg, seg(src), str(tmp_path / "inc"), progress=None)
    write_calls(src, "day2", day2)
    second = pipeline.run(spark, cfg, seg(src), str(tmp_path / "inc"), progress=None)
    assert "2 earlier events moved to the users" in second.recomputed
    write_calls(once, "all", day1 + day2)
    pipeline.run(spark, cfg, seg(once), str(tmp_path / "full"), progress=None)
    for name in GOLD:
        inc = DeltaTable(str(tmp_path / "inc" / "gold" / name)).to_pandas()
        full = DeltaTable(str(tmp_path / "full" / "gold" / name)).to_pandas()
        assert sorted(map(str, inc.to_dict("records"))) == sorted(map(str, full.to_dict("records"))), name
    users = DeltaTable(str(tmp_path / "inc" / "gold" / "users")).to_pandas()
    assert sorted(users["user_id"]) == ["u1", "u2"]


def test_forgetting_a_user_also_erases_the_anonymous_ids_tied_to_them_and_builds_no_gold_where_there_was_none(
        spark, cfg, tmp_path):
    from lakehouse import maintenance

    src = tmp_path / "src"
    write_calls(src, "c", [call("page", "m1", anonymousId="a1", name="Home"),
                           call("page", "m2", anonymousId="a0", name="Home"),
                           call("alias", "al1", previousId="a0", userId="a1"),   # a chain: a0 -> a1 -> u1
                           call("alias", "al2", previousId="a1", userId="u1"),
                           call("page", "m3", anonymousId="a2", name="Home")])
    to_silver(spark, cfg, seg(src), tmp_path / "lake")
    summary = maintenance.forget(spark, cfg, str(tmp_path / "lake"), ["u1"])
    assert "rows removed" in summary
    lines = rows(tmp_path / "lake", "bronze.events", "value")
    assert lines == [(json.dumps(call("page", "m3", anonymousId="a2", name="Home")),)]
    assert rows(tmp_path / "lake", "silver.events", "event_id", "user_id") == [("m3", "a2")]
    assert rows(tmp_path / "lake", "silver.identities", "anonymous_id") == []
    assert not (tmp_path / "lake" / "gold").exists()  # a silver-only lake: forget erases, it does not build


# ---------------------------------------------------------------- CSV exports


def test_csv_exports_map_with_the_default_column_names(spark, cfg, tmp_path):
    src = tmp_path / "shop"
    src.mkdir()
    (src / "events.csv").write_text(
        "Event ID,User ID,Session ID,event_type,timestamp,product_id,category,price,quantity,coupon\n"
        "e1,u1,s1,product_view,2026-01-05T10:00:00Z,p1,books,19.99,,\n"
        'e2,u1,s1,add_to_cart,2026-01-05T10:01:00Z,p1,"books, used",19.99,2,SPRING\n'
        "e3,u1,s1,add_to_cart,2026-01-05T10:01:00Z,p1\n")
    (src / "users.csv").write_text(
        "user id,e-mail,registration date,age,gender,location\n"
        "u1,ann@x.com,2025-12-01T00:00:00Z,34,Female,de\n")
    to_silver(spark, cfg, [Source(name="shop", kind="csv", uri=str(src))], tmp_path / "lake")
    got = rows(tmp_path / "lake", "silver.events", "event_id", "event", "user_id", "session_id", "item_id", "category",
               "price", "quantity", "properties")
    assert [g[:8] for g in got] == [("e1", "item_view", "u1", "s1", "p1", "books", 19.99, None),
                                    ("e2", "add_to_cart", "u1", "s1", "p1", "books, used", 19.99, 2)]
    assert json.loads(got[1][8])["coupon"] == "SPRING"
    assert rows(tmp_path / "lake", "silver.quarantine", "reason") == [("csv_field_count",)]
    assert rows(tmp_path / "lake", "silver.users", "user_id", "age", "gender", "country") == [("u1", 34, "female", "DE")]


def test_csv_with_a_mapping_a_timestamp_format_and_no_id_column(spark, cfg, tmp_path):
    src = tmp_path / "shop"
    (src / "exports").mkdir(parents=True)
    (src / "exports" / "activity.csv").write_text(
        "customer,what,when,sku\n"
        "c1,view,05/01/2026 11:00,p1\n"
        "c1,view,05/01/2026 11:00,p1\n"      # the same row exported twice: one event
        "c2,view,31/02/2026 11:00,p2\n")     # no such day: bad_timestamp
    options = {"events": {"fields": {"user_id": "customer", "event": "what", "ts": "when"},
                          "ts_format": "dd/MM/yyyy HH:mm", "timezone": "Europe/Berlin",
                          "properties": {"item_id": "sku"}, "renames": {"view": "item_view"}}}
    to_silver(spark, {**cfg, "sources": [{"name": "shop", "kind": "csv", "uri": str(src), **options}]},
              [Source(name="shop", kind="csv", uri=str(src), options=options)], tmp_path / "lake")
    got = rows(tmp_path / "lake", "silver.events", "event_id", "event", "user_id", "ts", "item_id")
    assert len(got) == 1 and len(got[0][0]) == 32
    assert got[0][1:3] == ("item_view", "c1") and got[0][4] == "p1"
    assert str(got[0][3]).startswith("2026-01-05 10:00:00")  # 11:00 in Berlin is 10:00 UTC
    assert rows(tmp_path / "lake", "silver.quarantine", "reason") == [("bad_timestamp",)]


# ---------------------------------------------------------------- config, flags and bad input


def test_sources_come_from_flags_or_config_and_bad_ones_are_named():
    assert parse_flag("segment:/data/x") == Source("segment", "segment", "/data/x")
    assert [s.name for s in from_run({}, "/l", ["csv:/a", "csv:/b"])] == ["landing", "csv", "csv-2"]
    assert from_run({"sources": [{"name": "web", "kind": "segment", "uri": "/s"}]})[0].kind == "segment"
    for bad, message in [
        ("kafka:/x", "unknown kind 'kafka'"),
        ("segment", "expected KIND:URI"),
    ]:
        with pytest.raises(SourceError, match=message):
            parse_flag(bad)
    for entry, message in [
        ({"name": "s", "kind": "csv", "uri": "/x", "events": {"fields": {"userid": "a"}}}, "events.fields.userid is not a contract field"),
        ({"name": "s", "kind": "csv", "uri": "/x", "events": {"ts_format": "yyyy-MM-dd bb"}}, "not a Spark datetime pattern"),
        ({"name": "s", "kind": "csv", "uri": "/x", "colour": 1}, "unknown option 'colour'"),
        ({"name": "s", "kind": "jdbc", "uri": "jdbc:postgresql://h/db?password=hunter2", "table": "t", "watermark": "id"}, "no password in the JDBC URL"),
    ]:
        with pytest.raises(SourceError, match=message) as err:
            from_config({"sources": [entry]})
        assert "hunter2" not in str(err.value)
    assert redact("jdbc:postgresql://bob:secret@h/db?password=x&ssl=1") == "jdbc:postgresql://bob:***@h/db?password=***&ssl=1"


def test_a_csv_mapping_naming_a_missing_column_stops_before_anything_is_written(tmp_path):
    src = tmp_path / "shop"
    src.mkdir()
    (src / "events.csv").write_text("id,who,ts,event\ne1,u1,2026-01-05T10:00:00Z,x\n")
    conf = tmp_path / "conf"
    shutil.copytree(ROOT / "conf" / "base", conf / "base")
    (conf / "local").mkdir()
    (conf / "local" / "sources.yaml").write_text(json.dumps({"sources": [
        {"name": "shop", "kind": "csv", "uri": str(src), "events": {"fields": {"user_id": "customer"}}}]}))
    done = subprocess.run([sys.executable, "-m", "lakehouse.cli", "run", "--lake", str(tmp_path / "lake")],
                          capture_output=True, text=True, env={"LAKEHOUSE_CONF_DIR": str(conf), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        "lakehouse run: error: source shop: events.fields.user_id names column 'customer', "
        f"which {src / 'events.csv'} does not have (its columns: id, who, ts, event)")
    assert not [p for p in (tmp_path / "lake").glob("*") if p.name in ("bronze", "silver", "gold")]


def test_a_timestamp_format_that_does_not_read_the_data_stops_before_anything_is_written(spark, cfg, tmp_path):
    src = tmp_path / "shop"
    src.mkdir()
    (src / "events.csv").write_text("event_id,user_id,event,ts\ne1,u1,x,2026-01-05T10:00:00Z\n")
    entry = {"name": "shop", "kind": "csv", "uri": str(src), "events": {"ts_format": "dd/MM/yyyy HH:mm"}}
    run_cfg = {**cfg, "sources": [entry]}
    with pytest.raises(SourceError, match=r"source shop: events.ts_format 'dd/MM/yyyy HH:mm' does not read "
                                          r"'2026-01-05T10:00:00Z', the first ts of .*events.csv"):
        pipeline.run(spark, run_cfg, from_config(run_cfg), str(tmp_path / "lake"), progress=None)
    assert not (tmp_path / "lake" / "bronze").exists()
    assert DeltaTable(str(tmp_path / "lake" / "ops" / "pipeline_runs")).to_pyarrow_table().column("status").to_pylist() == ["failed"]


def test_an_unknown_source_kind_on_the_command_line_is_one_line_and_exit_2(tmp_path):
    done = subprocess.run([sys.executable, "-m", "lakehouse.cli", "run", "--lake", str(tmp_path / "lake"),
                           "--source", "kafka:topic"], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        "lakehouse run: error: --source 'kafka:topic': unknown kind 'kafka' (expected one of landing, segment, csv, jdbc)")


# ---------------------------------------------------------------- the generator in every shape


@pytest.mark.e2e
def test_one_seed_gives_the_same_gold_in_every_shape(spark, cfg, tmp_path):
    from lakehouse import shapes

    lakes = {}
    for fmt in shapes.FORMATS:
        shapes.generate(str(tmp_path / fmt), fmt, users=60, days=8, seed=7)
        lakes[fmt] = tmp_path / f"lake-{fmt}"
        pipeline.run(spark, cfg, [Source(name=fmt, kind=fmt, uri=str(tmp_path / fmt))], str(lakes[fmt]), progress=None)
    assert rows(lakes["segment"], "silver.identities", "moved_events")  # anonymous events tied, some late
    for name in GOLD:
        landing = DeltaTable(str(lakes["landing"] / "gold" / name)).to_pandas()
        for fmt in ("segment", "csv"):
            other = DeltaTable(str(lakes[fmt] / "gold" / name)).to_pandas()
            assert list(other.columns) == list(landing.columns), (fmt, name)
            assert sorted(map(str, other.to_dict("records"))) == sorted(map(str, landing.to_dict("records"))), (fmt, name)


def _hadoop_listing(spark, folder: Path) -> list[tuple[str, int, int]]:
    """The reference: Hadoop's own recursive listing (uri, bytes, modification ms)."""
    jvm = spark.sparkContext._jvm
    root = jvm.org.apache.hadoop.fs.Path(str(folder))
    files = root.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()).listFiles(root, True)
    out = []
    while files.hasNext():
        s = files.next()
        out.append((s.getPath().toString(), int(s.getLen()), int(s.getModificationTime())))
    return sorted(out)


def test_a_local_folder_is_listed_with_the_uris_sizes_and_times_hadoop_gives(spark, tmp_path):
    """ops.ingest_files is keyed by Hadoop's URI of each file: the Python walk of a local landing
    must give the same URIs (nested folders, spaces, symbolic links to folders) and times."""
    landing = tmp_path / "land ing"
    (landing / "events" / "date=2025-01-01").mkdir(parents=True)
    (landing / "events" / "date=2025-01-01" / "a b.jsonl").write_text('{"x": 1}\n')
    (landing / "events" / "c.jsonl.gz").write_bytes(gzip.compress(b'{"x": 2}\n'))
    (landing / "events" / "_partial.jsonl").write_text("")
    (landing / "users").mkdir()
    (landing / "users" / "u.csv").write_text("user_id\nu1\n")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "d.json").write_text('{"x": 3}\n')
    (landing / "events" / "linked").symlink_to(outside, target_is_directory=True)
    (landing / "events" / "gone.jsonl").symlink_to(tmp_path / "renamed-away.jsonl")  # a broken link

    walked = [(u, n, round(t.timestamp() * 1000)) for u, n, t in bronze._list_files(spark, str(landing))]
    assert walked == _hadoop_listing(spark, landing)
    assert [u for u, _, _ in bronze._list_files(spark, "/" + str(landing) + "/")] == [u for u, _, _ in walked]
    listed = bronze.list_landing(spark, str(landing))
    assert [u.rsplit("/", 1)[-1] for u, _, _ in listed["events"]] == ["c.jsonl.gz", "a b.jsonl", "d.json"]  # by URI
    assert [u.rsplit("/", 1)[-1] for u, _, _ in listed["users"]] == ["u.csv"]
    assert all(u.startswith("file:/") for feed in listed.values() for u, _, _ in feed)


def test_resolving_identities_plans_the_claims_once_whatever_the_hops(spark):
    from lakehouse.transforms.sources import resolve_identities

    claims = spark.createDataFrame([("a", "b"), ("b", "c"), ("c", "d"), ("x", "y")], "anonymous_id string, user_id string")
    resolved = resolve_identities(claims)
    assert sorted(map(tuple, resolved.collect())) == [("a", "d"), ("b", "d"), ("c", "d"), ("x", "y")]
    # each pointer-jumping hop reads the previous one twice: unless each hop is a leaf of its own (a
    # checkpoint), the plan doubles per hop (9 scans of the claims and 52 plan lines for four hops)
    plan = str(resolved._jdf.queryExecution().analyzed())
    assert plan.count("LogicalRDD") <= 2 and len(plan.splitlines()) <= 10, plan
