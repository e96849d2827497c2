"""A forget leaves the replaced data files on disk for the retention; ordinary runs finish the job.

docs/maintenance.md, "Completing an erasure": pending erasures are recorded in ops.erasures; the
first `lakehouse run` (or watch cycle) after their retention vacuums exactly their tables and
records it; `lakehouse maintain` records what its own vacuum completed. Retention "passes" here by
an injected clock or by injected retention hours, never by sleeping.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable, write_deltalake

from lakehouse import maintenance, ops, pipeline, sparkstats, watch
from lakehouse.tables import Lake

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
H = dt.timedelta(hours=1)


def pending_row(erasure_id: str, tables: list[str], ended: dt.datetime, hours: int = 168) -> dict:
    """An ops.erasures row as forget logs it when the replaced files are still on disk."""
    return {"erasure_id": erasure_id, "requested_at": ended - H, "completed_at": ended,
            "user_id_hash": f"hash-{erasure_id}", "status": "completed", "rows_removed_json": "{}",
            "files_tables_json": json.dumps(tables), "files_due_at": ended + hours * H, "files_deleted_at": None}


def tiny_lake(root: Path) -> Lake:
    """bronze.events and gold.users, one live file each and one replaced file (written by delta-rs)."""
    lake = Lake(str(root))
    for name in ("bronze.events", "gold.users"):
        write_deltalake(lake.path(name), pa.table({"user_id": ["u1", "u2"]}))
        write_deltalake(lake.path(name), pa.table({"user_id": ["u2"]}), mode="overwrite")  # "u1 erased"
    return lake


def erasure_rows(lake: Lake) -> dict[str, dict]:
    return {r["erasure_id"]: r for r in ops.read(lake, "ops.erasures")}


@pytest.fixture()
def vacuumed(monkeypatch) -> list[tuple[str, int]]:
    """Every vacuum maintenance runs, as (table folder, retention hours)."""
    calls = []
    real = maintenance._vacuum

    def spy(uri, hours):
        calls.append((Path(uri).parent.name + "." + Path(uri).name, hours))
        return real(uri, hours)

    monkeypatch.setattr(maintenance, "_vacuum", spy)
    return calls


def test_a_pending_erasure_completes_only_once_the_configured_retention_has_passed_since_its_forget(
        tmp_path, cfg, vacuumed):
    lake = tiny_lake(tmp_path / "lake")
    ops.append(lake, "ops.erasures", [pending_row("e1", ["gold.users"], T0)])

    assert maintenance.complete_erasures(cfg, lake.root, now=T0 + 167 * H) == ""
    assert vacuumed == [] and erasure_rows(lake)["e1"]["files_deleted_at"] is None

    note = maintenance.complete_erasures(cfg, lake.root, now=T0 + 168 * H)
    assert "erasure e1 completed" in note and "retention 168 h" in note
    assert vacuumed == [("gold.users", 168)]  # its one table, with the configured retention
    assert erasure_rows(lake)["e1"]["files_deleted_at"] is not None
    assert maintenance.complete_erasures(cfg, lake.root, now=T0 + 999 * H) == "", "recorded once, done once"


def test_the_run_vacuums_exactly_the_tables_of_the_due_erasures(tmp_path, cfg, vacuumed):
    lake = tiny_lake(tmp_path / "lake")
    ops.append(lake, "ops.erasures", [pending_row("due1", ["gold.users"], T0),
                                      pending_row("due1", ["gold.users", "ops.progress"], T0),  # a table gone since
                                      pending_row("later", ["bronze.events"], T0 + 100 * H)])

    note = maintenance.complete_erasures(cfg, lake.root, now=T0 + 200 * H)

    assert vacuumed == [("gold.users", 168)]  # not bronze.events (not due), nothing for a missing table
    rows = erasure_rows(lake)
    assert rows["due1"]["files_deleted_at"] is not None and rows["later"]["files_deleted_at"] is None
    assert "erasure due1 completed" in note and "later" not in note
    assert [r["erasure_id"] for r in ops.read(lake, "ops.erasures") if r["files_deleted_at"]] == ["due1", "due1"]


def test_raising_the_retention_after_a_forget_postpones_completion_to_the_new_retention(tmp_path, cfg, vacuumed):
    lake = tiny_lake(tmp_path / "lake")
    ops.append(lake, "ops.erasures", [pending_row("e1", ["gold.users"], T0, hours=24)])
    longer = {**cfg, "vacuum_retention_hours": 48}
    assert maintenance.complete_erasures(longer, lake.root, now=T0 + 30 * H) == ""  # its vacuum would keep them
    assert "erasure e1 completed" in maintenance.complete_erasures(longer, lake.root, now=T0 + 48 * H)


def test_with_no_pending_erasure_completion_reads_only_ops_erasures_and_needs_no_spark(tmp_path, cfg, monkeypatch):
    def no_vacuum(*args):
        raise AssertionError("nothing to vacuum")

    monkeypatch.setattr(maintenance, "_vacuum", no_vacuum)
    lake = tiny_lake(tmp_path / "lake")
    assert maintenance.complete_erasures(cfg, lake.root) == ""  # no ops.erasures table
    legacy = {k: v for k, v in pending_row("old", ["gold.users"], T0).items() if not k.startswith("files_")}
    done = {**pending_row("done", ["gold.users"], T0), "files_deleted_at": T0 + 170 * H}
    ops.append(lake, "ops.erasures", [legacy, done])  # logged before files were tracked; already completed
    assert maintenance.complete_erasures(cfg, lake.root, now=T0 + 9999 * H) == ""


def test_a_table_that_cannot_be_vacuumed_leaves_its_erasure_pending_and_says_so(tmp_path, cfg, monkeypatch):
    lake = tiny_lake(tmp_path / "lake")
    ops.append(lake, "ops.erasures", [pending_row("e1", ["gold.users"], T0), pending_row("e2", ["bronze.events"], T0)])
    real = maintenance._vacuum

    def flaky(uri, hours):
        if uri.endswith("gold/users"):
            raise OSError("disk on fire")
        return real(uri, hours)

    monkeypatch.setattr(maintenance, "_vacuum", flaky)
    note = maintenance.complete_erasures(cfg, lake.root, now=T0 + 200 * H)
    assert "erasure e1 NOT completed: could not vacuum gold.users: disk on fire" in note
    assert "erasure e2 completed" in note
    rows = erasure_rows(lake)
    assert rows["e1"]["files_deleted_at"] is None and rows["e2"]["files_deleted_at"] is not None


def test_maintain_records_the_erasures_its_retention_completes(tmp_path, cfg):
    lake = tiny_lake(tmp_path / "lake")
    ops.append(lake, "ops.erasures", [pending_row("e1", ["gold.users"], ops.now())])
    spark = None  # one live file per table: nothing to OPTIMIZE, every vacuum goes through delta-rs
    out = maintenance.maintain(spark, cfg, lake.root)
    assert "erasure e1" not in out and erasure_rows(lake)["e1"]["files_deleted_at"] is None, "168 h not passed"

    out = maintenance.maintain(spark, {**cfg, "vacuum_retention_hours": 0}, lake.root)  # --retention-hours 0

    assert "erasure e1 completed" in out and erasure_rows(lake)["e1"]["files_deleted_at"] is not None
    assert [p.name for p in Path(lake.path("gold.users")).glob("*.parquet")] == [
        Path(u).name for u in DeltaTable(lake.path("gold.users")).file_uris()]  # the replaced file is gone


@pytest.mark.parametrize("status, hours, changed, pending", [
    ("completed", 168, ["gold.users"], True),   # the replaced files wait for the retention
    ("completed", 0, ["gold.users"], False),    # forget --retention-hours 0: its own vacuum deleted them
    ("completed", 168, [], False),              # ids the lake did not know: no table changed, nothing on disk
    ("failed", 0, ["bronze.events"], True),     # a failed forget: what it changed is still tracked
])
def test_forget_logs_its_replaced_files_as_pending_unless_nothing_is_left_on_disk(tmp_path, cfg, status, hours,
                                                                                  changed, pending):
    lake = Lake(str(tmp_path / "lake"))
    erasure = maintenance.Erasure(["u1", "u2"], hours, status=status, changed=changed)
    erasure.log(lake, cfg)
    rows = ops.read(lake, "ops.erasures")
    assert len(rows) == 2 and {r["files_tables_json"] for r in rows} == {json.dumps(changed)}
    assert all(r["files_due_at"] == r["completed_at"] + hours * H for r in rows)
    assert all((r["files_deleted_at"] is None) == pending for r in rows)
    assert set(maintenance.pending_erasures(lake)) == ({erasure.erasure_id} if pending else set())


class NoRun:
    def __call__(self, *args, **kwargs):
        raise AssertionError("an idle cycle runs no pipeline")


def test_an_idle_watch_cycle_completes_a_due_erasure(tmp_path, cfg, monkeypatch):
    lake = tiny_lake(tmp_path / "lake")
    ops.append(lake, "ops.erasures", [pending_row("e1", ["gold.users"], ops.now() - 200 * H)])
    monkeypatch.setattr(watch, "has_work", lambda *a: False)
    lines = []
    spark = None  # an idle cycle (has_work says no) needs no Spark
    watch.watch(spark, cfg, str(tmp_path), lake.root, interval=0.01, max_cycles=2, run=NoRun(), progress=lines.append)
    assert [m for m in lines if "erasure" in m] == [
        next(m for m in lines if m.startswith("watch: cycle 1: erasure e1 completed"))]  # once, in the first cycle
    assert erasure_rows(lake)["e1"]["files_deleted_at"] is not None


# ---------------------------------------------------------------- end to end

def _landing(root: Path) -> Path:
    """Two users, a profile each and three events each."""
    landing = root / "landing"
    (landing / "events" / "date=2026-01-05").mkdir(parents=True)
    (landing / "users").mkdir()
    profiles = [{"user_id": u, "registered_at": "2026-01-05T08:00:00Z", "updated_at": "2026-01-05T08:00:00Z",
                 "gender": "f", "email": f"{u}@example.org", "country": "FR", "city": "Lyon",
                 "signup_channel": "organic"} for u in ("u-keep", "u-gone")]
    (landing / "users" / "profiles.jsonl").write_text("".join(json.dumps(p) + "\n" for p in profiles))
    events = [{"event_id": f"{u}-{i}", "event": e, "ts": f"2026-01-05T{9 + i:02d}:00:00Z", "user_id": u,
               "session_id": f"s-{u}", "properties": {"page": "/home"} if e == "page_view" else {},
               "context": {"country": "FR", "device": "mobile"}}
              for u in ("u-keep", "u-gone") for i, e in enumerate(["app_install", "login", "page_view"])]
    (landing / "events" / "date=2026-01-05" / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    return landing


def parquet_files_holding(lake: Path, needle: str) -> list[str]:
    """Every data file of every table whose decoded Parquet values hold the needle."""
    return [str(p.relative_to(lake)) for p in sorted(lake.glob("*/*/**/*.parquet"))
            if "_delta_log" not in p.parts and needle in json.dumps(pq.read_table(p).to_pylist(), default=str)]


@pytest.mark.e2e
@pytest.mark.slow  # two pipeline runs and a forget on two users (gold recomputed): a few minutes
def test_forget_then_an_ordinary_run_after_the_retention_leaves_no_file_holding_the_user(spark, cfg, tmp_path):
    landing, lake = _landing(tmp_path), tmp_path / "lake"
    assert pipeline.run(spark, cfg, str(landing), str(lake), progress=None).status == "success"

    maintenance.forget(spark, cfg, str(lake), ["u-gone"])  # the configured 168 h retention

    held = parquet_files_holding(lake, "u-gone")
    assert held, "the replaced files still hold the user until the retention has passed"
    not_yet = pipeline.run(spark, cfg, str(landing), str(lake), progress=None)  # retention not passed
    assert parquet_files_holding(lake, "u-gone") == held

    after = {**cfg, "vacuum_retention_hours": 0}  # the retention has passed for this run
    summary = pipeline.run(spark, after, str(landing), str(lake), progress=None)

    assert parquet_files_holding(lake, "u-gone") == []
    assert parquet_files_holding(lake, "u-keep"), "the other user is still there"
    [row] = ops.read(Lake(str(lake)), "ops.erasures")
    assert f"erasure {row['erasure_id']} completed" in summary.render() and not not_yet.erasures
    tables = json.loads(row["files_tables_json"])
    assert {"bronze.events", "silver.events", "gold.users"} <= set(tables)
    assert {"/".join(h.split("/")[:2]).replace("/", ".") for h in held} <= set(tables)
    assert row["files_due_at"] == row["completed_at"] + 168 * H and row["files_deleted_at"] is not None

    before = sparkstats.counts(spark)  # nothing pending any more: the check costs no Spark job
    assert maintenance.complete_erasures(after, str(lake)) == ""
    spent = sparkstats.since(spark, before)
    assert spent is None or spent.jobs == 0
