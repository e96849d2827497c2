"""The pipeline run: bronze -> silver -> gold in one Spark session, with a summary and a run log."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

from pyspark.sql import SparkSession

from lakehouse import bronze, gold, maintenance, ops, silver, sparkstats
from lakehouse.config import small_writes
from lakehouse.progress import Line, Reporter, as_reporter
from lakehouse.session import layer_settings, tuned
from lakehouse.lock import LakeBusyError, PipelineError, lake_lock  # noqa: F401 - part of this module's API
from lakehouse.tables import GOLD, Lake, rdd_mark, release_since

LAYERS = ("bronze", "silver", "gold")


@dataclass
class RunSummary:
    """What one run read, wrote, dropped and quarantined, how long each layer (and each gold table's
    write) took, and how many Spark jobs and stages each layer ran."""

    run_id: str
    started_at: dt.datetime
    files: dict = field(default_factory=dict)
    lines: dict = field(default_factory=dict)
    rows: dict = field(default_factory=dict)
    quarantined: Counter = field(default_factory=Counter)
    duplicates: int = 0
    profile_headers: int = 0
    durations: dict = field(default_factory=dict)
    tables: dict = field(default_factory=dict)  # gold table -> seconds its write took (4 written at a time)
    jobs: dict = field(default_factory=dict)  # layer -> Spark jobs it ran (empty when the session cannot tell)
    stages: dict = field(default_factory=dict)  # layer -> Spark stages it created
    recomputed: str = "nothing"
    status: str = "running"
    message: str = ""
    erasures: str = ""  # pending erasures this run completed (maintenance.complete_erasures)

    def slowest_tables(self) -> list[tuple[str, float]]:
        """Gold tables by write seconds, slowest first."""
        return sorted(self.tables.items(), key=lambda kv: (-kv[1], kv[0]))

    def durations_record(self) -> dict:
        """Seconds per layer, then per gold table as `gold.<table>`, as ops.pipeline_runs stores them."""
        record = {k: round(v, 3) for k, v in self.durations.items()}
        record.update({f"gold.{k}": round(v, 3) for k, v in sorted(self.tables.items())})
        return record

    def spark_record(self) -> dict:
        """Spark jobs and stages per layer, as ops.pipeline_runs stores them."""
        return {"jobs": dict(self.jobs), "stages": dict(self.stages)}

    def lines_total(self) -> int:
        return sum(self.lines.values())

    def render(self) -> str:
        """A short human summary for the console."""
        out = [f"run {self.run_id}: {self.status}"]
        if self.files:
            out.append("  read: " + ", ".join(f"{feed} {self.files.get(feed, 0)} files / {self.lines.get(feed, 0)} lines" for feed in sorted(self.files)))
        else:
            out.append("  read: no new files")
        if self.rows:
            out.append("  rows added: " + ", ".join(f"{k} {v}" for k, v in sorted(self.rows.items())))
        out.append(f"  duplicates dropped: {self.duplicates}")
        q = sum(self.quarantined.values())
        out.append(f"  quarantined: {q}" + (" (" + ", ".join(f"{k} {v}" for k, v in sorted(self.quarantined.items())) + ")" if q else ""))
        out.append(f"  recomputed: {self.recomputed}")
        out.append("  time: " + ", ".join(f"{k} {v:.1f}s" for k, v in self.durations.items()))
        if self.tables:
            out.append("  gold tables: " + ", ".join(f"{k} {v:.1f}s" for k, v in self.slowest_tables()))
        if self.jobs:
            out.append("  spark: " + ", ".join(f"{k} {n} jobs / {self.stages.get(k, 0)} stages" for k, n in self.jobs.items())
                       + f", total {sum(self.jobs.values())} jobs / {sum(self.stages.values())} stages")
        if self.message:
            out.append(f"  note: {self.message}")
        out += [f"  {line}" for line in self.erasures.splitlines()]
        return "\n".join(out)


class _Layer:
    """Times one layer of a run, counts its Spark jobs and stages, and reports its start and finish."""

    def __init__(self, spark: SparkSession, summary: RunSummary, reporter: Reporter, name: str):
        self.spark, self.summary, self.reporter, self.name = spark, summary, reporter, name
        self.seconds = 0.0

    def run(self, step: Callable, text: str | None, total: int | None = None):
        """The step's result; `text` is the line that announces it (None: not announced)."""
        before = sparkstats.counts(self.spark)
        if text is not None:
            self.reporter.start(self.name, text, total)
        start = time.perf_counter()
        try:
            return step()
        finally:
            self.seconds = time.perf_counter() - start
            s = self.summary
            s.durations[self.name] = s.durations.get(self.name, 0.0) + self.seconds
            spent = sparkstats.since(self.spark, before)
            if spent is not None:
                s.jobs[self.name] = s.jobs.get(self.name, 0) + spent.jobs
                s.stages[self.name] = s.stages.get(self.name, 0) + spent.stages

    def item(self, name: str, seconds: float) -> None:
        self.reporter.item(self.name, name, seconds)

    def forget(self) -> None:
        """Leave this layer out of the summary (it had nothing to do)."""
        for record in (self.summary.durations, self.summary.jobs, self.summary.stages):
            record.pop(self.name, None)

    def finish(self, text: str) -> None:
        self.reporter.finish(self.name, self.seconds, text)


def _log_run(lake: Lake, cfg: dict, summary: RunSummary) -> None:
    """Append the run to ops.pipeline_runs."""
    ops.append(lake, "ops.pipeline_runs", [{
        "run_id": summary.run_id, "started_at": summary.started_at, "ended_at": ops.now(),
        "status": summary.status, "timezone": cfg["timezone"], "files": sum(summary.files.values()),
        "lines": summary.lines_total(), "silver_rows": summary.rows.get("silver.events", 0),
        "duplicates": summary.duplicates, "quarantined": sum(summary.quarantined.values()),
        "rows_json": json.dumps(summary.rows, sort_keys=True),
        "quarantine_json": json.dumps(dict(summary.quarantined), sort_keys=True),
        "durations_json": json.dumps(summary.durations_record()),
        "spark_json": json.dumps(summary.spark_record()) if summary.jobs else None,
        "recomputed": summary.recomputed, "message": summary.message[:2000],
    }])


def run(spark: SparkSession, cfg: dict, landing: str | list | None, lake_root: str, only: str | None = None,
        full_refresh: bool = False, wait: bool = False, progress: Reporter | Line | None = print,
        register: bool = True) -> RunSummary:
    """Run the layers (all, or `only` one) and return the summary; nothing new changes nothing.

    `landing` is the landing folder, or the run's sources (`lakehouse.sources.from_run`).

    `progress` is a `lakehouse.progress.Reporter` (the CLI's live display or plain lines), or any
    callable taking one line of text (plain lines through it), or None for silence. With
    `register`, the session that keeps going after the run (watch mode, a notebook, a test) has
    every table as `layer.table` in its catalog; a process that ends with the run passes False
    (registering reads each table's Delta log: a Spark job per table nobody would query).
    """
    progress = as_reporter(progress)
    if only is not None and only not in LAYERS:
        raise PipelineError(f"--only {only!r}: expected one of {', '.join(LAYERS)}")
    lake = Lake(lake_root)
    summary = RunSummary(run_id=uuid.uuid4().hex[:12], started_at=ops.now())
    layers = [only] if only else list(LAYERS)
    with lake_lock(lake_root, wait=wait, command="lakehouse run"):
        mark = rdd_mark(spark)  # the layers' local checkpoints and caches are dropped when they end
        try:
            wrote = _run_layers(spark, cfg, landing, lake, layers, full_refresh, summary, progress)
            summary.status = "success"
        except BaseException as exc:
            with contextlib.suppress(Exception):
                release_since(spark, mark)
            summary.status = "failed"
            summary.message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            with contextlib.suppress(Exception):
                _log_run(lake, cfg, summary)
            raise
        release_since(spark, mark)
        if wrote:
            _log_run(lake, cfg, summary)
            # Keeps live files per table bounded. After the run log: its time and jobs are in the summary only.
            maintain = _Layer(spark, summary, progress, "maintenance")
            note = maintain.run(lambda: maintenance.after_run(spark, cfg, lake_root), text=None)
            if note:
                maintain.finish(note)
            else:
                maintain.forget()
            if register:
                lake.register(spark, only_missing=True)
        # Erasures past their retention: delete the old files that still hold erased rows (delta-rs, no Spark job).
        summary.erasures = maintenance.complete_erasures(cfg, lake_root)
    return summary


def _run_layers(spark, cfg, landing, lake, layers, full_refresh, summary, progress) -> bool:
    """The layers of one run; returns whether anything was written."""
    wrote = False
    if "bronze" in layers:
        if not landing:
            raise PipelineError("--landing or --source is required to run bronze")
        layer = _Layer(spark, summary, progress, "bronze")
        with tuned(spark, layer_settings(cfg, lake, "bronze")):
            result = layer.run(lambda: bronze.ingest(spark, lake, landing, small_writes(cfg)["bronze_max_bytes"]), "bronze: looking for new files")
        if result.batch_id is not None:
            wrote = True
            summary.files, summary.lines = result.files, result.lines
            for feed, n in result.lines.items():
                summary.rows[f"bronze.{feed}"] = n
            layer.finish(f"bronze: batch {result.batch_id}{' (replayed)' if result.replayed else ''}: "
                         + ", ".join(f"{feed} {result.files[feed]} files / {result.lines[feed]} lines" for feed in result.files))
        else:
            layer.finish("bronze: no new files")
    if "silver" in layers:
        batches = bronze.committed_batches(lake)
        if batches and silver.done_batches(lake, "silver") < batches[-1]:
            layer = _Layer(spark, summary, progress, "silver")
            with tuned(spark, layer_settings(cfg, lake, "silver")):
                res = layer.run(lambda: silver.process(spark, lake, cfg, batches, on_step=layer.item),
                                "silver: parsing, validating, deduplicating")
            wrote = True
            summary.rows["silver.events"] = res.events_added
            summary.duplicates = res.duplicates
            summary.profile_headers = res.profile_headers
            summary.quarantined = res.quarantined
            layer.finish(f"silver: batches {res.batches}: {res.events_added} events added, {res.duplicates} duplicates dropped, "
                         f"{sum(res.quarantined.values())} lines quarantined")
        elif full_refresh and silver.sessions_stale(spark, lake, cfg):
            layer = _Layer(spark, summary, progress, "silver")
            layer.run(lambda: silver.refresh_sessions(spark, lake, cfg), "silver: cutting sessions again")
            wrote = True
            layer.finish("silver: sessions cut again whole (session_gap_minutes or excluded_events differ from those they were cut with)")
    if "gold" in layers:
        silver_done = silver.done_batches(lake, "silver")
        gold_done = silver.done_batches(lake, "gold")
        if silver_done and (full_refresh or gold_done < silver_done):
            layer = _Layer(spark, summary, progress, "gold")

            def on_table(name: str, seconds: float) -> None:  # called from gold's writer threads
                summary.tables[name] = seconds
                layer.item(name, seconds)

            with tuned(spark, layer_settings(cfg, lake, "gold")):
                res = layer.run(lambda: gold.run(spark, lake, cfg, None if full_refresh else silver_done,
                                                 summary.run_id, after_batch=gold_done, on_table=on_table),
                                "gold: building metrics", total=len(GOLD))
            silver.mark_done(lake, "gold", silver_done)
            wrote = True
            summary.rows.update({f"gold.{k}": v for k, v in res.rows.items()})
            summary.recomputed = res.recomputed
            layer.finish(f"gold: {len(res.rows)} tables published; {res.recomputed}")
    return wrote
