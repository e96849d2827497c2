"""The run's progress reporter (plain lines, live display) and the Spark job and stage counter."""

from __future__ import annotations

import io
import threading
import time

import pyarrow as pa
import pytest

from lakehouse import ops, progress, sparkstats
from lakehouse.tables import Lake


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_reporter_writes_one_line_per_start_item_and_finish_with_seconds():
    lines: list[str] = []
    rep = progress.Reporter(emit=lines.append)
    rep.start("gold", "gold: building metrics", total=2)
    rep.item("gold", "users", 1.25)
    rep.item("gold", "engagement_daily", 0.5)
    rep.finish("gold", 3.04, "gold: 2 tables published")
    rep("maintenance: nothing to do")  # a reporter is also a progress(line) callable
    assert lines == [
        "gold: building metrics",
        "gold: users 1.2s (1/2)",
        "gold: engagement_daily 0.5s (2/2)",
        "gold: 2 tables published (3.0s)",
        "maintenance: nothing to do",
    ]


def test_plain_reporter_lines_from_many_threads_are_whole_and_counted():
    lines: list[str] = []
    rep = progress.Reporter(emit=lines.append)
    rep.start("gold", total=40)

    def write(i: int) -> None:
        rep.item("gold", f"t{i}", 0.0)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    counts = sorted(int(line.rsplit("(", 1)[1].split("/")[0]) for line in lines[1:])
    assert counts == list(range(1, 41))


def test_as_reporter_keeps_callables_and_silences_none():
    got: list[str] = []
    rep = progress.as_reporter(got.append)
    rep.start("bronze", "bronze: looking for new files")
    assert got == ["bronze: looking for new files"]
    same = progress.Reporter(emit=got.append)
    assert progress.as_reporter(same) is same
    progress.as_reporter(None).message("nothing shown")


def test_live_display_only_on_a_terminal_outside_ci():
    assert progress.interactive(_Tty(), environ={}) is True
    assert progress.interactive(_Tty(), environ={"CI": "true"}) is False
    assert progress.interactive(_Tty(), environ={"CI": "false"}) is True
    assert progress.interactive(io.StringIO(), environ={}) is False
    assert isinstance(progress.auto(io.StringIO()), progress.Reporter)
    assert not isinstance(progress.auto(io.StringIO()), progress.LiveReporter)


def test_live_reporter_draws_steps_and_stops_cleanly():
    out = _Tty()
    with progress.LiveReporter(out) as rep:
        rep.start("gold", "gold: building metrics", total=2)
        rep.item("gold", "users", 0.1)
        rep.message("a note")
        rep.finish("gold", 0.2, "gold: 2 tables published")
        rep.finish("maintenance", 0.1, "maintenance: compacted")  # never started: printed as a line
    text = out.getvalue()
    assert "a note" in text and "gold: 2 tables published (0.2s)" in text and "maintenance: compacted" in text


def test_job_counter_counts_a_tiny_spark_job(spark):
    before = sparkstats.counts(spark)
    assert before is not None
    assert spark.sparkContext.parallelize(range(10), 2).count() == 10
    spent = sparkstats.since(spark, before)
    assert spent == sparkstats.Counts(jobs=1, stages=1)


def test_status_tracker_fallback_agrees_with_the_scheduler(spark):
    spark.sparkContext.parallelize(range(10), 2).map(lambda x: (x % 2, x)).reduceByKey(lambda a, b: a + b).count()
    exact = sparkstats._from_scheduler(spark.sparkContext)
    deadline = time.monotonic() + 10
    while (tracked := sparkstats._from_status_tracker(spark.sparkContext)) != exact and time.monotonic() < deadline:
        time.sleep(0.1)  # the status tracker follows an asynchronous listener
    assert tracked == exact


def test_job_counter_without_a_spark_context_is_none():
    class Connect:  # Spark Connect sessions raise on .sparkContext
        @property
        def sparkContext(self):
            raise RuntimeError("not supported in Spark Connect")

    assert sparkstats.counts(Connect()) is None
    assert sparkstats.counts(None) is None
    assert sparkstats.since(None, sparkstats.Counts(1, 1)) is None


def test_run_log_gains_its_new_column_on_a_lake_that_predates_it(tmp_path):
    lake = Lake(str(tmp_path / "lake"))
    new = ops.SCHEMAS["ops.pipeline_runs"]
    old = pa.schema([f for f in new if f.name != "spark_json"])
    from deltalake import write_deltalake

    write_deltalake(lake.rs_uri("ops.pipeline_runs"), pa.Table.from_pylist([{"run_id": "old"}], schema=old))
    ops.append(lake, "ops.pipeline_runs", [{"run_id": "new", "spark_json": '{"jobs": {"gold": 1}}'}])
    rows = {r["run_id"]: r for r in ops.read(lake, "ops.pipeline_runs")}
    assert rows["old"]["spark_json"] is None and rows["new"]["spark_json"] == '{"jobs": {"gold": 1}}'


@pytest.mark.parametrize("key", ["gold.users"])
def test_dashboard_step_chart_leaves_out_per_table_seconds(key):
    import json

    from dashboard import data

    df = data.run_durations({"durations_json": json.dumps({"bronze": 1.0, "gold": 2.0, key: 0.5})})
    assert list(df["step"]) == ["bronze", "gold"]
