"""The pipeline run: bronze -> silver -> gold in one Spark session, with a summary and a run log."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Iterator

from pyspark.sql import SparkSession

from lakehouse import bronze, gold, maintenance, ops, silver
from lakehouse.session import small_run_conf, tuned
from lakehouse.tables import Lake

LAYERS = ("bronze", "silver", "gold")


class PipelineError(RuntimeError):
    """An error the user can fix; the message says what."""


class LakeBusyError(PipelineError):
    """Another run holds the lake."""


@dataclass
class RunSummary:
    """What one run read, wrote, dropped and quarantined, and how long each layer took."""

    run_id: str
    started_at: dt.datetime
    files: dict = field(default_factory=dict)
    lines: dict = field(default_factory=dict)
    rows: dict = field(default_factory=dict)
    quarantined: Counter = field(default_factory=Counter)
    duplicates: int = 0
    profile_headers: int = 0
    durations: dict = field(default_factory=dict)
    recomputed: str = "nothing"
    status: str = "running"
    message: str = ""

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
        if self.message:
            out.append(f"  note: {self.message}")
        return "\n".join(out)


@contextlib.contextmanager
def lake_lock(lake_root: str, wait: bool = False) -> Iterator[None]:
    """One run at a time per lake (an OS file lock for local lakes; none for remote URIs)."""
    if "://" in lake_root and not lake_root.startswith("file:"):
        yield
        return
    import fcntl

    root = lake_root.removeprefix("file://").removeprefix("file:")
    try:
        os.makedirs(root, exist_ok=True)
        handle = open(os.path.join(root, "_lakehouse.lock"), "w")
    except OSError as exc:
        raise PipelineError(f"lake folder {lake_root} is not writable: {exc.strerror}") from exc
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError as exc:
            raise LakeBusyError(f"another lakehouse run is using {lake_root}; try again when it ends (or pass --wait)") from exc
        yield
    finally:
        handle.close()


def _timed(summary: RunSummary, name: str, step: Callable):
    start = time.perf_counter()
    try:
        return step()
    finally:
        summary.durations[name] = summary.durations.get(name, 0.0) + time.perf_counter() - start


def _log_run(lake: Lake, cfg: dict, summary: RunSummary) -> None:
    """Append the run to ops.pipeline_runs."""
    ops.append(lake, "ops.pipeline_runs", [{
        "run_id": summary.run_id, "started_at": summary.started_at, "ended_at": ops.now(),
        "status": summary.status, "timezone": cfg["timezone"], "files": sum(summary.files.values()),
        "lines": summary.lines_total(), "silver_rows": summary.rows.get("silver.events", 0),
        "duplicates": summary.duplicates, "quarantined": sum(summary.quarantined.values()),
        "rows_json": json.dumps(summary.rows, sort_keys=True),
        "quarantine_json": json.dumps(dict(summary.quarantined), sort_keys=True),
        "durations_json": json.dumps({k: round(v, 3) for k, v in summary.durations.items()}),
        "recomputed": summary.recomputed, "message": summary.message[:2000],
    }])


def run(spark: SparkSession, cfg: dict, landing: str | None, lake_root: str, only: str | None = None,
        full_refresh: bool = False, wait: bool = False, progress: Callable[[str], None] = print) -> RunSummary:
    """Run the layers (all, or `only` one) and return the summary; nothing new changes nothing."""
    if only is not None and only not in LAYERS:
        raise PipelineError(f"--only {only!r}: expected one of {', '.join(LAYERS)}")
    lake = Lake(lake_root)
    summary = RunSummary(run_id=uuid.uuid4().hex[:12], started_at=ops.now())
    layers = [only] if only else list(LAYERS)
    with lake_lock(lake_root, wait=wait):
        try:
            wrote = _run_layers(spark, cfg, landing, lake, layers, full_refresh, summary, progress)
            summary.status = "success"
        except BaseException as exc:
            summary.status = "failed"
            summary.message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            with contextlib.suppress(Exception):
                _log_run(lake, cfg, summary)
            raise
        if wrote:
            _log_run(lake, cfg, summary)
            note = maintenance.after_run(spark, cfg, lake_root)  # keeps live files per table bounded
            if note:
                progress(note)
            lake.register(spark)
    return summary


def _run_layers(spark, cfg, landing, lake, layers, full_refresh, summary, progress) -> bool:
    """The layers of one run; returns whether anything was written."""
    wrote = False
    if "bronze" in layers:
        if landing is None:
            raise PipelineError("--landing is required to run bronze")
        progress("bronze: looking for new files")
        result = _timed(summary, "bronze", lambda: bronze.ingest(spark, lake, landing))
        if result.batch_id is not None:
            wrote = True
            summary.files, summary.lines = result.files, result.lines
            for feed, n in result.lines.items():
                summary.rows[f"bronze.{feed}"] = n
            progress(f"bronze: batch {result.batch_id}{' (replayed)' if result.replayed else ''}: "
                     + ", ".join(f"{feed} {result.files[feed]} files / {result.lines[feed]} lines" for feed in result.files))
    if "silver" in layers:
        batches = bronze.committed_batches(lake)
        if batches and silver.done_batches(lake, "silver") < batches[-1]:
            progress("silver: parsing, validating, deduplicating")
            size = ops.pending_bytes(lake, silver.done_batches(lake, "silver"))
            with tuned(spark, small_run_conf(cfg, "silver", size)):
                res = _timed(summary, "silver", lambda: silver.process(spark, lake, cfg, batches))
            wrote = True
            summary.rows["silver.events"] = res.events_added
            summary.duplicates = res.duplicates
            summary.profile_headers = res.profile_headers
            summary.quarantined = res.quarantined
            progress(f"silver: batches {res.batches}: {res.events_added} events added, {res.duplicates} duplicates dropped, "
                     f"{sum(res.quarantined.values())} lines quarantined")
    if "gold" in layers:
        silver_done = silver.done_batches(lake, "silver")
        gold_done = silver.done_batches(lake, "gold")
        if silver_done and (full_refresh or gold_done < silver_done):
            progress("gold: building metrics")
            with tuned(spark, small_run_conf(cfg, "gold", ops.live_rows(lake, "silver.events"))):
                res = _timed(summary, "gold", lambda: gold.run(spark, lake, cfg, None if full_refresh else silver_done,
                                                               summary.run_id, after_batch=gold_done))
            silver.mark_done(lake, "gold", silver_done)
            wrote = True
            summary.rows.update({f"gold.{k}": v for k, v in res.rows.items()})
            summary.recomputed = res.recomputed
            progress(f"gold: {len(res.rows)} tables published; {res.recomputed}")
    return wrote
