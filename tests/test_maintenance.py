"""`forget` (right to be forgotten) and `maintain` (compaction, vacuum) on small lakes."""

from __future__ import annotations

import gzip
import hashlib
import json
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable, write_deltalake

from lakehouse import cli, maintenance, ops, pipeline
from lakehouse.generator import generate
from lakehouse.tables import Lake

EMAIL = "erase.me@example.org"


def rows(table: Path) -> list[dict]:
    return DeltaTable(str(table)).to_pyarrow_table().to_pylist()


def live_files(table: Path) -> int:
    return len(DeltaTable(str(table)).file_uris())


def tables(lake: Path) -> list[Path]:
    return sorted(p for p in lake.glob("*/*") if (p / "_delta_log").is_dir())


def files_holding(lake: Path, needles: list[str]) -> list[str]:
    """Every file under the lake whose bytes, decompressed bytes or decoded Parquet values hold a needle."""
    found = []
    for path in sorted(p for p in lake.rglob("*") if p.is_file()):
        data = path.read_bytes()
        if path.name.endswith(".gz"):
            data += gzip.decompress(data)
        if path.name.endswith(".parquet") and not path.name.startswith("."):
            data += json.dumps(pq.read_table(path).to_pylist(), default=str).encode()
        found += [f"{path.relative_to(lake)}: {n}" for n in needles if n.encode() in data]
    return found


def assert_plain_for_delta_rs(table: Path) -> None:
    """Protocol 1/2 without table features, no deletion vectors, classic checkpoints only."""
    dt = DeltaTable(str(table))
    protocol = dt.protocol()
    assert (protocol.min_reader_version, protocol.min_writer_version) == (1, 2), table
    assert not protocol.reader_features and not protocol.writer_features, table
    assert dt.metadata().configuration.get("delta.enableDeletionVectors") == "false", table
    log = table / "_delta_log"
    assert not (log / "_sidecars").exists() and not list(log.glob("*.checkpoint.*.*")), table


def test_rows_match_an_id_as_a_whole_value_never_as_a_substring(spark):
    events, csv = "file:/l/events/e.jsonl", "file:/l/users/p.csv"
    cases = [  # value, source_file, value_bytes (original bytes of a non-UTF-8 line), user_id, matches u1
        ('{"user_id":"u1","event":"a"}', events, None, None, True),
        ('{"user_id":"u12","event":"a"}', events, None, None, False),
        ('{"user_id" : "u1" }', events, None, None, True),
        ('{"user_id":"\\u0075\\u0031"}', events, None, None, True),  # JSON escapes, read through $.user_id
        ('{"user_id":"u2","properties":{"friend":"u1"}}', events, None, None, True),
        ('{"user_id":"u2","note":"ref-u1"}', events, None, None, False),
        ("not json u1", events, None, None, False),
        ("u1,2025-01-01T00:00:00Z,f", csv + ".gz", None, None, True),
        ('"u1",2025-01-01T00:00:00Z,f', csv, None, None, True),
        ("x,y,u1", csv, None, None, True),
        ("u12,2025-01-01T00:00:00Z,f", csv, None, None, False),
        ("x,y,u1", events, None, None, False),  # a comma field counts in CSV files only
        ("\ufffd", events, b'{"user_id":"u1","x":"\xff"}', None, True),
        (None, None, None, "u1", True),
        (None, None, None, "u12", False),
    ]
    df = spark.createDataFrame([c[:4] for c in cases], "value string, source_file string, value_bytes binary, user_id string")
    assert [r[0] for r in df.select(maintenance._matches(df, "u1")).collect()] == [c[4] for c in cases]


@pytest.fixture(scope="module")
def built(spark, cfg, tmp_path_factory):
    """A generated landing (plus a CSV profile update of the busiest user) and the lake built from it."""
    root = tmp_path_factory.mktemp("forget")
    generate(str(root / "landing"), users=30, days=5, seed=5)
    lines = [json.loads(line) for f in sorted((root / "landing" / "events").rglob("*.jsonl")) for line in f.open()]
    busiest = Counter(r["user_id"] for r in lines).most_common(2)
    victim, other = busiest[0][0], busiest[1][0]
    with (root / "landing" / "users" / "updates-2025-12.csv").open("a") as fh:
        fh.write(f"{victim},2025-11-01T00:00:00Z,2025-12-31T00:00:00Z,F,,31,{EMAIL},FR,Lyon,referral\n")
    assert pipeline.run(spark, cfg, str(root / "landing"), str(root / "lake"), progress=lambda m: None).status == "success"
    return root, victim, other


@pytest.mark.e2e
@pytest.mark.trust  # builds a lake (a pipeline run): with `make test-trust`
def test_zorder_columns_exist_in_the_tables(built):
    root, _, _ = built
    lake = Lake(str(root / "lake"))
    for name, columns in maintenance.ZORDER.items():
        if ops.table_version(lake, name) is not None:  # silver.quarantine only exists once a line was bad
            assert set(columns) <= set(DeltaTable(lake.path(name)).schema().to_arrow().names), name


@pytest.mark.e2e
@pytest.mark.trust  # a pipeline run, a forget (gold recomputed) and an incremental run: minutes
def test_forget_erases_the_users_from_every_file_and_keeps_everyone_else(spark, cfg, built):
    root, victim, other = built
    lake, landing = root / "lake", root / "landing"
    erased = [victim, other]
    users_before = {r["user_id"]: r for r in rows(lake / "gold" / "users")}
    activity_before = rows(lake / "gold" / "user_activity_daily")
    dau_before = sum(r["dau"] for r in rows(lake / "gold" / "engagement_daily"))
    events_before = Counter(r["user_id"] for r in rows(lake / "silver" / "events"))
    assert set(erased) <= set(users_before) and all(events_before[u] for u in erased)
    assert any(EMAIL in r["value"] for r in rows(lake / "bronze" / "users"))  # the CSV line reached bronze
    ops.append(Lake(str(lake)), "ops.expectations", [{  # a rule sample naming a user, as quality writes them
        "run_id": "r0", "checked_at": ops.now(), "table_name": "gold.users", "rule": "r", "action": "warn",
        "failing_rows": 1, "passed": False, "detail": f"1 of 30 rows; e.g. user_id={other}"}])
    needles = erased + [EMAIL]
    assert files_holding(lake, [victim, EMAIL])  # the scan does find them before

    summary = maintenance.forget(spark, {**cfg, "vacuum_retention_hours": 0}, str(lake), erased + ["u9999999"])

    assert files_holding(lake, needles) == []
    assert "3 user id(s), 2 found" in summary and "NOT YET GONE" not in summary
    for table in tables(lake):  # every table still opens with delta-rs
        DeltaTable(str(table)).to_pyarrow_table()
    for table in (lake / "gold").iterdir():
        assert_plain_for_delta_rs(table)

    # Everyone else is intact: their events, their gold rows, DAU minus exactly the erased user-days.
    assert Counter(r["user_id"] for r in rows(lake / "silver" / "events")) == Counter(
        {u: n for u, n in events_before.items() if u not in erased})
    stable = ("first_seen_date", "last_active_date", "active_days", "events", "orders", "revenue")
    users_after = {r["user_id"]: r for r in rows(lake / "gold" / "users")}
    assert set(users_after) == set(users_before) - set(erased)
    assert all(users_after[u][c] == users_before[u][c] for u in users_after for c in stable)
    daily = rows(lake / "gold" / "engagement_daily")
    assert sum(r["dau"] for r in daily) == dau_before - sum(1 for r in activity_before if r["user_id"] in erased)
    per_day = Counter(r["activity_date"] for r in rows(lake / "gold" / "user_activity_daily"))
    assert all(r["dau"] == per_day.get(r["activity_date"], 0) for r in daily)

    # The erasure is logged by salted hash; ops samples are redacted; idempotent-write markers survive.
    log = ops.read(Lake(str(lake)), "ops.erasures")
    hashes = {maintenance.erasure_hash(cfg, u): u for u in erased + ["u9999999"]}
    assert {r["user_id_hash"] for r in log} == set(hashes) and {r["status"] for r in log} == {"completed"}
    removed = {hashes[r["user_id_hash"]]: json.loads(r["rows_removed_json"]) for r in log}
    assert removed[victim]["bronze.users"] >= 1 and removed[victim]["silver.users"] == 1
    assert removed[victim]["bronze.events"] >= removed[victim]["silver.events"] > 0
    assert not any(removed["u9999999"].values())
    assert "1 of 30 rows; e.g. user_id=[erased]" in {r["detail"] for r in ops.read(Lake(str(lake)), "ops.expectations")}
    assert DeltaTable(str(lake / "bronze" / "events")).transaction_version("bronze.events") == 1

    # A later run reads only the new file (landing still holds the erased users) and works on the cut history.
    new = landing / "events" / "date=2026-01-05" / "late.jsonl"
    new.parent.mkdir()
    keep = next(u for u in users_after)
    new.write_text("".join(json.dumps({"event_id": f"new-{i}", "event": "page_view", "ts": "2025-12-30T10:00:00Z",
                                       "user_id": u, "properties": {"page": "/"}}) + "\n"
                           for i, u in enumerate([keep, "u0999999"])))
    again = pipeline.run(spark, cfg, str(landing), str(lake), progress=lambda m: None)
    assert (again.status, again.files, again.lines["events"]) == ("success", {"events": 1, "users": 0}, 2)
    assert files_holding(lake, needles) == []
    assert "u0999999" in {r["user_id"] for r in rows(lake / "gold" / "users")}


def small_lake(root: Path) -> Lake:
    """bronze.events, gold.user_activity_daily and ops.progress with one row each (written by delta-rs: fast)."""
    lake = Lake(str(root))
    plain = {"delta.enableDeletionVectors": "false", "delta.columnMapping.mode": "none"}
    write_deltalake(lake.path("bronze.events"), bronze_row(0), configuration=plain)
    write_deltalake(lake.path("gold.user_activity_daily"), activity_row(0), configuration=plain)
    ops.append(lake, "ops.progress", [{"layer": "silver", "batch_id": 0, "completed_at": ops.now()}])
    return lake


def bronze_row(i: int) -> pa.Table:
    return pa.table({"value": ["{}"], "source_file": [f"f{i}"], "batch_id": [i]})


def activity_row(i: int) -> pa.Table:
    day = pa.array([f"2026-01-{1 + i % 28:02d}"]).cast(pa.date32())
    return pa.table({"activity_date": day, "user_id": [f"u{i}"], "country": [["DE", "FR"][i % 2]]})


@pytest.mark.trust  # 300 commits and a few OPTIMIZEs: about a minute
def test_100_small_runs_stay_bounded_and_maintain_compacts_everything(spark, cfg, tmp_path):
    lake = small_lake(tmp_path / "lake")
    names = ["bronze.events", "gold.user_activity_daily", "ops.progress"]
    paths = {n: Path(lake.path(n)) for n in names}
    hook_cfg = {**cfg, "maintenance": {**cfg["maintenance"], "max_files_per_table": 60}}
    assert maintenance.after_run(spark, hook_cfg, lake.root) == ""
    most = {n: 0 for n in names}
    for i in range(1, 101):  # 100 tiny commits per table, as 100 small incremental runs leave them
        write_deltalake(lake.path("bronze.events"), bronze_row(i), mode="append")
        write_deltalake(lake.path("gold.user_activity_daily"), activity_row(i), mode="append")
        ops.append(lake, "ops.progress", [{"layer": "silver", "batch_id": i, "completed_at": ops.now()}])
        maintenance.after_run(spark, hook_cfg, lake.root)  # what the pipeline calls after each run
        most = {n: max(most[n], live_files(paths[n])) for n in names}
    assert most == {n: 60 for n in names} and all(live_files(paths[n]) == 41 for n in names)
    before = {n: Counter(json.dumps(r, sort_keys=True, default=str) for r in rows(paths[n])) for n in names}
    assert all(sum(c.values()) == 101 for c in before.values())

    now = {**cfg, "vacuum_retention_hours": 0, "maintenance": {**cfg["maintenance"], "zorder_min_mb": 0}}
    summary = maintenance.maintain(spark, now, lake.root)

    assert "gold.user_activity_daily: " in summary and "z-ordered by activity_date, country" in summary
    assert "bronze.events: " in summary and "z-ordered by batch_id" in summary
    for n in names:
        path = paths[n]
        assert live_files(path) == 1, n
        assert Counter(json.dumps(r, sort_keys=True, default=str) for r in rows(path)) == before[n], n
        on_disk = [p.name for p in path.glob("*.parquet")]
        assert len(on_disk) == 1, n  # everything replaced was vacuumed (retention 0)
        sidecars = [p.name[1:-4] for p in path.glob(".*.crc")]
        assert set(sidecars) <= set(on_disk), n  # no orphaned Hadoop checksum files
    assert_plain_for_delta_rs(paths["gold.user_activity_daily"])
    assert spark.read.format("delta").load(str(paths["bronze.events"])).count() == 101


def test_user_errors_are_one_line_and_name_the_fix(cfg, tmp_path, capsys):
    spark = None  # every check happens before Spark is needed
    missing = tmp_path / "no-lake"
    with pytest.raises(maintenance.MaintenanceError, match="no lakehouse tables found"):
        maintenance.forget(spark, cfg, str(missing), ["u1"])
    with pytest.raises(maintenance.MaintenanceError, match="no lakehouse tables found"):
        maintenance.maintain(spark, cfg, str(missing))
    assert not missing.exists()  # no lock file left in a mistyped folder
    with pytest.raises(maintenance.MaintenanceError, match="non-empty --user-id"):
        maintenance.forget(spark, cfg, str(missing), [" "])
    with pytest.raises(maintenance.MaintenanceError, match="vacuum_retention_hours: must be a whole number >= 0"):
        maintenance.maintain(spark, {**cfg, "vacuum_retention_hours": -1}, str(missing))

    lake = Lake(str(tmp_path / "lake"))  # a batch planned but never committed (a killed run)
    ops.append(lake, "ops.ingest_files", [{"batch_id": 1, "feed": "events", "file_path": "file:/l/e.jsonl", "size": 1,
                                           "modified_at": ops.now(), "status": "planned", "recorded_at": ops.now()}])
    with pytest.raises(maintenance.MaintenanceError, match="run `lakehouse run` first"):
        maintenance.forget(spark, cfg, lake.root, ["u1"])
    with pipeline.lake_lock(lake.root), pytest.raises(pipeline.LakeBusyError, match="--wait"):
        maintenance.maintain(spark, cfg, lake.root)

    (tmp_path / "empty").mkdir()
    for argv, message in [
        (["forget", "--lake", str(missing), "--user-id", "u1"], "lake folder not found"),
        (["maintain", "--lake", str(tmp_path / "empty")], "no lakehouse tables found"),
        (["forget", "--lake", lake.root, "--user-id", ""], "give at least one non-empty --user-id"),
        (["maintain", "--lake", lake.root, "--retention-hours", "-1"], "--retention-hours: must be a whole number >= 0"),
    ]:
        assert cli.main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err


def _incompressible(key: str) -> str:
    """192 bytes of hex that Parquet's compression cannot shrink much (row groups fill as in real data)."""
    return hashlib.sha512(key.encode()).hexdigest() + hashlib.sha256(key.encode()).hexdigest()


def test_compaction_keeps_silver_events_in_time_order_and_gives_an_older_lake_the_layout(spark, cfg, tmp_path):
    import datetime as dt

    from lakehouse.tables import ORDERED_PROPERTIES

    lake = Lake(str(tmp_path / "lake"))
    path = lake.path("silver.events")
    start = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    for part in range(2):  # a lake from before the layout: two files spanning the same days, no properties
        minutes = [(i * 7919 + part) % 60000 for i in range(30000)]
        write_deltalake(path, pa.table({"event_id": [f"e{part}.{i}" for i in range(30000)],
                                        "ts": [start + dt.timedelta(minutes=m) for m in minutes],
                                        "pad": [_incompressible(f"{part}.{i}") for i in range(30000)]}),
                        mode="append")
    before = Counter(r["event_id"] for r in rows(Path(path)))

    summary = maintenance.maintain(spark, {**cfg, "vacuum_retention_hours": 0}, lake.root)

    assert "silver.events: 2 -> 1 (z-ordered by ts, sorted within files" in summary  # below zorder_min_mb, yet not bin-packed
    table = DeltaTable(path)
    assert {k: table.metadata().configuration.get(k) for k in ORDERED_PROPERTIES} == ORDERED_PROPERTIES
    assert Counter(r["event_id"] for r in rows(Path(path))) == before
    meta = pq.ParquetFile(table.file_uris()[0]).metadata
    ts = meta.schema.names.index("ts")
    bounds = [(meta.row_group(g).column(ts).statistics.min, meta.row_group(g).column(ts).statistics.max)
              for g in range(meta.num_row_groups)]
    # Z-ordered by one column: row groups in time order, overlapping at most within one of the
    # clustering's ranges of ts, so together they span little more than the data does.
    assert len(bounds) > 1 and all(lo <= next_lo and hi <= next_hi for (lo, hi), (next_lo, next_hi) in zip(bounds, bounds[1:]))
    assert sum((hi - lo for lo, hi in bounds), dt.timedelta()) <= 1.1 * (bounds[-1][1] - bounds[0][0])


def test_a_lake_given_as_a_relative_path_is_compacted_like_an_absolute_one(spark, cfg, tmp_path, monkeypatch):
    # Delta reads delta.`<path>` as a path only when it is absolute: `--lake demo/lake` must still compact.
    monkeypatch.chdir(tmp_path)
    lake = Lake("lake")
    for i in range(2):
        write_deltalake(lake.path("bronze.events"), bronze_row(i), mode="append")

    summary = maintenance.maintain(spark, {**cfg, "vacuum_retention_hours": 0}, "lake")

    assert "bronze.events: 2 -> 1" in summary
    assert live_files(tmp_path / "lake" / "bronze" / "events") == 1
    assert sorted(r["source_file"] for r in rows(tmp_path / "lake" / "bronze" / "events")) == ["f0", "f1"]
