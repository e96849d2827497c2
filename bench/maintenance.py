"""Maintenance benchmark: files per table and read times over many small incremental pipeline runs.

    python -m bench.maintenance [--runs 100] [--users 20] [--at 10,50,100] [--out DIR] [--resume] [--hook-only]

Every run lands one small events file (one generated day) and runs the whole pipeline in-process
(one Spark session) on two lakes: one with the pipeline's compaction hook off
(`maintenance.max_files_per_table: 0`) and one with the configured hook. At each checkpoint both
are measured, then a copy of the first is maintained (`maintain` with retention 0, as it is once
files are older than the retention) and measured again. --hook-only runs just the lake with the
configured hook (half the time; no comparison). Results: printed table and <out>/result.json.
--resume continues an interrupted benchmark (finishing the last landed run).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import time
from pathlib import Path

from deltalake import DeltaTable

from lakehouse import maintenance, ops, pipeline
from lakehouse.config import load_config
from lakehouse.generator import generate
from lakehouse.session import build_spark
from lakehouse.tables import Lake


def read_ms(fn, repeat: int = 5) -> float:
    """Median wall time of `fn()` in milliseconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return round(statistics.median(times), 1)


def measure(lake: Path) -> dict:
    """Live data files, data files on disk and log files per table; dashboard and ops read times."""
    tables = {}
    for table in sorted(p for p in lake.glob("*/*") if (p / "_delta_log").is_dir()):
        tables[f"{table.parent.name}.{table.name}"] = {
            "live": len(DeltaTable(str(table)).file_uris()),
            "on_disk": sum(1 for p in table.glob("*.parquet")),
            "log": sum(1 for p in (table / "_delta_log").iterdir() if p.is_file() and not p.name.startswith(".")),
        }
    activity = str(lake / "gold" / "user_activity_daily")
    return {
        "tables": tables,
        "max_live": max(t["live"] for t in tables.values()),
        "live": sum(t["live"] for t in tables.values()),
        "on_disk": sum(t["on_disk"] for t in tables.values()),
        "log": sum(t["log"] for t in tables.values()),
        "dashboard_read_ms": read_ms(lambda: DeltaTable(activity).to_pyarrow_table()),
        "ingest_manifest_read_ms": read_ms(lambda: ops.read(Lake(str(lake)), "ops.ingest_files")),
    }


def stage(out: Path, users: int, runs: int, fresh: bool) -> tuple[list[Path], Path]:
    """One generated day with events per run (in day order) and the landing folder runs read."""
    source = out / f"source-{users}x{runs}"
    if not (source / "events").is_dir():
        generate(str(source), users=users, days=runs + 40, seed=1)  # some days have no events
    landing = out / "landing"
    if fresh:
        shutil.rmtree(landing, ignore_errors=True)
        shutil.copytree(source / "users", landing / "users")
    days = [d for d in sorted((source / "events").iterdir()) if any(f.stat().st_size for f in d.iterdir())]
    return days[:runs], landing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.maintenance", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--at", default="10,50,100", help="runs after which to measure")
    parser.add_argument("--out", default="bench/out/maintenance")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted benchmark in --out")
    parser.add_argument("--hook-only", action="store_true", help="only the lake with the pipeline's compaction hook")
    args = parser.parse_args(argv)
    out = Path(args.out).resolve()
    checkpoints = {int(x) for x in args.at.split(",")}
    cfg = load_config()
    spark = build_spark(cfg, "bench-maintenance")
    days, landing = stage(out, args.users, args.runs, fresh=not args.resume)
    lakes = {"no maintenance": out / "lake-none", "pipeline hook": out / "lake-hook"}
    cfgs = {"no maintenance": {**cfg, "maintenance": {**cfg["maintenance"], "max_files_per_table": 0}},
            "pipeline hook": cfg}
    if args.hook_only:
        del lakes["no maintenance"], cfgs["no maintenance"]
    landed = len(list((landing / "events").iterdir())) if args.resume else 0
    saved = out / "result.json"
    results = json.loads(saved.read_text()) if args.resume and saved.exists() else []
    results = [r for r in results if r["run"] < landed]
    if not args.resume:
        for lake in lakes.values():
            shutil.rmtree(lake, ignore_errors=True)
    seconds = {name: [] for name in lakes}
    for run, day in enumerate(days[:args.runs], start=1):
        if run < landed:
            continue
        if run > landed:
            shutil.copytree(day, landing / "events" / day.name)
        for name, lake in lakes.items():
            start = time.perf_counter()
            pipeline.run(spark, cfgs[name], str(landing), str(lake), progress=_hook_notes(run))
            seconds[name].append(time.perf_counter() - start)
        print(f"run {run}: " + ", ".join(f"{n} {s[-1]:.1f}s" for n, s in seconds.items()), flush=True)
        if run in checkpoints:
            results += checkpoint(spark, cfg, run, lakes, seconds, out)
            (out / "result.json").write_text(json.dumps(results, indent=1))
    print(render(results))
    return 0


def _hook_notes(run: int):
    """A progress callback printing only what the pipeline's maintenance hook did."""
    def show(message: str) -> None:
        if message.startswith("maintenance:"):
            print(f"  run {run} {message}", flush=True)
    return show


def checkpoint(spark, cfg: dict, run: int, lakes: dict, seconds: dict, out: Path) -> list[dict]:
    """Measure every lake, then a maintained copy of the one without maintenance (with --hook-only:
    of the hooked lake)."""
    found = []
    for name, lake in lakes.items():
        found.append({"run": run, "lake": name, "run_s": round(statistics.mean(seconds[name][-5:]), 1), **measure(lake)})
    name = "no maintenance" if "no maintenance" in lakes else "pipeline hook"
    found.append(maintained_copy(spark, cfg, run, lakes[name], name, out))
    print(render(found), flush=True)
    return found


def maintained_copy(spark, cfg: dict, run: int, lake: Path, name: str, out: Path) -> dict:
    """A copy of `lake` maintained with retention 0 (as it is once replaced files are older than the
    retention), measured."""
    copy = out / "lake-maintained"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(lake, copy)
    start = time.perf_counter()
    maintenance.maintain(spark, {**cfg, "vacuum_retention_hours": 0}, str(copy))
    return {"run": run, "lake": f"{name}, then `maintain`", "maintain_s": round(time.perf_counter() - start, 1),
            **measure(copy)}


def render(results: list[dict]) -> str:
    """A Markdown table of the checkpoints."""
    lines = ["| after run | lake | max live files in a table | live files | data files on disk | log files | "
             "gold.user_activity_daily read (ms) | ops.ingest_files read (ms) | run (s, last 5) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['run']} | {r['lake']} | {r['max_live']} | {r['live']} | {r['on_disk']} | {r['log']} | "
                     f"{r['dashboard_read_ms']} | {r['ingest_manifest_read_ms']} | {r.get('run_s', '')} |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
