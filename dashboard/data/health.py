"""Pipeline health: every table's version and log details, missing gold tables, quarantine, the
pipeline's runs and their step durations, erasures and the reporting timezone."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import numpy as np
import pandas as pd

from .lake import GOLD_TABLES, frame, gold, list_tables, prefetch_details, table_details, table_version


def table_health() -> pd.DataFrame:
    """Per table: layer, name, version, last update (UTC), rows, files, bytes; missing gold tables listed."""
    recs = []
    present = set()
    versions = [(layer, name, table_version(layer, name)) for layer, name in list_tables()]
    prefetch_details(versions)
    for layer, name, v in versions:
        if v is None:
            continue
        present.add((layer, name))
        try:
            det = table_details(layer, name, v)
            status = "ok"
        except Exception as exc:  # noqa: BLE001
            det, status = {"updated_at": None, "rows": None, "files": None, "size_bytes": None}, f"error: {exc}"
        recs.append({"layer": layer, "table": name, "version": v, **det, "status": status})
    for name in GOLD_TABLES:
        if ("gold", name) not in present:
            recs.append({"layer": "gold", "table": name, "version": None, "updated_at": None, "rows": None,
                         "files": None, "size_bytes": None, "status": "missing"})
    return pd.DataFrame(recs, columns=["layer", "table", "version", "updated_at", "rows", "files", "size_bytes",
                                       "status"])


def quarantine() -> pd.DataFrame | None:
    """gold.quarantine_summary (lines by feed and reason)."""
    q = gold("quarantine_summary")
    return None if q is None else q.sort_values("lines", ascending=False).reset_index(drop=True)


def pipeline_runs() -> pd.DataFrame | None:
    """ops.pipeline_runs, latest first."""
    r = frame("ops", "pipeline_runs")
    if r is None:
        return None
    return r.sort_values("started_at", ascending=False, na_position="last").reset_index(drop=True)


def last_run() -> dict | None:
    """The latest pipeline run as a dict (None when there is none)."""
    r = pipeline_runs()
    if r is None or not len(r):
        return None
    return r.iloc[0].to_dict()


def run_durations(run: dict | None) -> pd.DataFrame | None:
    """Seconds per step of a run, from its durations_json (the layers: the per-table `gold.<table>`
    entries break a layer down and are left out)."""
    if not run or not run.get("durations_json"):
        return None
    try:
        d = json.loads(run["durations_json"])
    except (TypeError, ValueError):
        return None
    if not isinstance(d, dict):
        return None
    d = {k: v for k, v in d.items() if "." not in str(k)}
    return pd.DataFrame({"step": list(d.keys()), "seconds": [float(v) for v in d.values()]})


def erasures(now: datetime | None = None) -> pd.DataFrame | None:
    """ops.erasures, one row per forget (latest first): when requested, how many user ids, its
    status, and the replaced data files that still held the erased rows: `old_files` is "pending"
    (deleted by the first pipeline run after `due_at`), "overdue" (due, no run since), "deleted"
    (at `deleted_at`) or "not tracked" (logged before ops.erasures tracked them). None: no table."""
    e = frame("ops", "erasures")
    if e is None:
        return None
    e = e.copy()
    for col in ("files_due_at", "files_deleted_at"):
        if col not in e.columns:
            e[col] = pd.NaT
    now = pd.Timestamp(now or datetime.now(timezone.utc))
    out = e.groupby("erasure_id", sort=False).agg(
        requested_at=("requested_at", "min"), users=("user_id_hash", "count"),
        status=("status", lambda s: "failed" if (s == "failed").any() else str(s.iloc[0])),
        due_at=("files_due_at", "max"), deleted_at=("files_deleted_at", "max"),
        undeleted=("files_deleted_at", lambda s: int(s.isna().sum()))).reset_index()
    tracked = out["due_at"].notna()
    deleted = tracked & (out["undeleted"] == 0)
    out["deleted_at"] = out["deleted_at"].where(deleted)
    out["old_files"] = np.select([deleted, tracked & (out["due_at"] <= now), tracked],
                                 ["deleted", "overdue", "pending"], "not tracked")
    out = out.drop(columns=["undeleted"])
    return out.sort_values("requested_at", ascending=False, na_position="last").reset_index(drop=True)


def reporting_timezone() -> str:
    """The reporting timezone of the latest pipeline run (UTC when unknown)."""
    run = last_run()
    tz = run.get("timezone") if run else None
    return str(tz) if isinstance(tz, str) and tz.strip() else "UTC"
