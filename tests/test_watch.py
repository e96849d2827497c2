"""Watch mode (`lakehouse run --watch`): when a cycle runs the pipeline, and how it stops.

The cycles here use a stand-in for `pipeline.run` (they prove the loop's rules); the real pipeline
in watch mode is compared with separate runs in tests/test_watch_pipeline.py (make test-trust).
"""

from __future__ import annotations

import datetime as dt
import os
import signal
from types import SimpleNamespace

import pytest

from lakehouse import bronze, ops, watch
from lakehouse.pipeline import LakeBusyError
from lakehouse.tables import Lake

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def _land(landing, name: str) -> None:
    path = landing / "events" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('{"event_id": "e1", "event": "login", "ts": "2026-01-01T00:00:00Z", "user_id": "u1"}\n')


def _manifest(lake: Lake, batch_id: int, uri: str, status: str) -> None:
    ops.append(lake, "ops.ingest_files", [{"batch_id": batch_id, "feed": "events", "file_path": uri, "size": 1,
                                           "modified_at": NOW, "status": status, "recorded_at": NOW}])


def _progress(lake: Lake, layer: str, batch_id: int) -> None:
    ops.append(lake, "ops.progress", [{"layer": layer, "batch_id": batch_id, "completed_at": NOW}])


class FakeRun:
    """Stands in for pipeline.run: records calls, can raise or send a signal while 'running'."""

    def __init__(self, on_call=None):
        self.calls = 0
        self.on_call = on_call

    def __call__(self, spark, cfg, landing, lake_root, progress=print):
        self.calls += 1
        if self.on_call:
            self.on_call(self.calls)
        return SimpleNamespace(run_id=f"r{self.calls}", status="success")


def test_has_work_is_true_for_unseen_files_unfinished_batches_and_layers_behind_bronze(spark, tmp_path):
    landing, lake = tmp_path / "landing", Lake(str(tmp_path / "lake"))
    (landing / "events").mkdir(parents=True)
    assert not watch.has_work(spark, lake, str(landing)), "empty landing, empty lake"
    _land(landing, "a.jsonl")
    assert watch.has_work(spark, lake, str(landing)), "a file never seen"
    [(uri, _, _)] = bronze.list_landing(spark, str(landing))["events"]
    _manifest(lake, 1, uri, "planned")
    assert watch.has_work(spark, lake, str(landing)), "a planned batch not committed (a killed run)"
    _manifest(lake, 1, uri, "committed")
    assert watch.has_work(spark, lake, str(landing)), "bronze committed, silver behind"
    _progress(lake, "silver", 1)
    assert watch.has_work(spark, lake, str(landing)), "silver done, gold behind"
    _progress(lake, "gold", 1)
    assert not watch.has_work(spark, lake, str(landing)), "every layer has the only file"


def test_a_cycle_that_finds_nothing_runs_nothing_and_one_with_new_files_runs_once(spark, tmp_path, cfg, monkeypatch):
    landing = tmp_path / "landing"
    (landing / "events").mkdir(parents=True)
    found = iter([False, True, False])
    monkeypatch.setattr(watch, "has_work", lambda *a: next(found))
    fake = FakeRun()
    result = watch.watch(spark, cfg, str(landing), str(tmp_path / "lake"), interval=0.01, max_cycles=3,
                         run=fake, progress=lambda m: None)
    assert fake.calls == 1
    assert [c.found for c in result.cycles] == [False, True, False]
    assert result.cycles[1].run_id == "r1" and result.cycles[1].heap_mb > 0, "heap measured after a processed cycle"
    assert result.stopped_by == "3 cycles"


def test_sigterm_during_a_cycle_lets_it_finish_then_stops(spark, tmp_path, cfg, monkeypatch):
    monkeypatch.setattr(watch, "has_work", lambda *a: True)
    messages = []
    fake = FakeRun(on_call=lambda n: os.kill(os.getpid(), signal.SIGTERM))
    result = watch.watch(spark, cfg, str(tmp_path), str(tmp_path / "lake"), interval=0.01, max_cycles=10,
                         run=fake, progress=messages.append)
    assert fake.calls == 1, "no second cycle after the signal"
    assert result.cycles[0].status == "success", "the cycle the signal arrived in finished"
    assert result.stopped_by == "SIGTERM"
    assert any("stopping after the current cycle" in m for m in messages)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL, "the previous handler is restored"


def test_a_second_signal_during_the_same_cycle_stops_at_once(spark, tmp_path, cfg, monkeypatch):
    monkeypatch.setattr(watch, "has_work", lambda *a: True)

    def twice(n):
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)
        raise AssertionError("not reached: the second signal interrupts the cycle")

    with pytest.raises(KeyboardInterrupt):
        watch.watch(spark, cfg, str(tmp_path), str(tmp_path / "lake"), interval=0.01, max_cycles=10,
                    run=FakeRun(on_call=twice), progress=lambda m: None)


def test_a_signal_while_waiting_stops_without_another_cycle(spark, tmp_path, cfg, monkeypatch):
    calls = []

    def has_work(*a):
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGINT)  # arrives between cycles (while idle)
        return False

    monkeypatch.setattr(watch, "has_work", has_work)
    result = watch.watch(spark, cfg, str(tmp_path), str(tmp_path / "lake"), interval=0.01, max_cycles=50,
                         run=FakeRun(), progress=lambda m: None)
    assert len(result.cycles) == 2 and result.stopped_by == "SIGINT"


def test_a_busy_lake_skips_the_cycle_and_the_watch_goes_on(spark, tmp_path, cfg, monkeypatch):
    monkeypatch.setattr(watch, "has_work", lambda *a: True)

    def busy_first(n):
        if n == 1:
            raise LakeBusyError("another lakehouse run is using the lake")

    fake = FakeRun(on_call=busy_first)
    result = watch.watch(spark, cfg, str(tmp_path), str(tmp_path / "lake"), interval=0.01, max_cycles=2,
                         run=fake, progress=lambda m: None)
    assert [c.status for c in result.cycles] == ["busy", "success"]


def test_the_trim_releases_the_jobs_the_scheduler_keeps_for_finished_queries(spark, tmp_path, cfg, monkeypatch):
    # A job submitted under the id of a SQL execution that is not running (a thread that still
    # carries the id in its local properties) is kept by the DAGScheduler, with its stages and their
    # lineage, for the session's life. The trim after each cycle releases it: the count stays flat.
    monkeypatch.setattr(watch, "has_work", lambda *a: True)
    sc = spark.sparkContext

    def late_job(n):
        sc.setLocalProperty("spark.sql.execution.id", str(10**12 + n))  # no such execution is running
        try:
            sc.parallelize([n], 1).count()
        finally:
            sc.setLocalProperty("spark.sql.execution.id", None)
        during.append(watch.query_job_entries(spark))

    watch.release_finished_queries(spark)  # what earlier tests in this session left
    start, during = watch.query_job_entries(spark), []
    assert start is not None, "the scheduler's bookkeeping is readable"
    watch.watch(spark, cfg, str(tmp_path), str(tmp_path / "lake"), interval=0.01, max_cycles=4,
                run=FakeRun(on_call=late_job), progress=lambda m: None)
    assert during == [start + 1] * 4, "each cycle's late job was kept until that cycle's trim"
    assert watch.query_job_entries(spark) == start
    assert watch.release_finished_queries(spark) == 0, "nothing left to release"


def test_an_interval_of_zero_or_less_is_refused(spark, tmp_path, cfg):
    with pytest.raises(ValueError, match="--interval"):
        watch.watch(spark, cfg, str(tmp_path), str(tmp_path / "lake"), interval=0, run=FakeRun())


@pytest.mark.parametrize("argv, message", [
    (["--watch", "--only", "gold"], "--watch runs every layer"),
    (["--watch", "--interval", "0"], "--interval: must be a number of seconds above 0"),
    (["--watch", "--max-cycles", "0"], "--max-cycles: must be a whole number >= 1"),
    (["--max-cycles", "2"], "--max-cycles goes with --watch"),
])
def test_watch_flags_are_checked_before_spark_starts(tmp_path, capsys, argv, message):
    from lakehouse import cli

    (tmp_path / "landing").mkdir()
    code = cli.main(["run", "--landing", str(tmp_path / "landing"), "--lake", str(tmp_path / "lake"), *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0]
