"""Watch-mode bench: many cycles in one Spark session, each landing one new day of events.

    python -m bench.watch [--cycles 200] [--users 20] [--out bench/out/watch]

`lakehouse.watch.watch` runs `--cycles` + 1 cycles: the first builds the lake from the first day,
each later one finds one new day file and runs the whole pipeline on it. For every processed
cycle it records the seconds, the Spark jobs it ran and the driver's used heap after a full GC
(measured by the watch after its trim). Prints, and writes to `bench/out/watch.json` (after every
cycle, so a bench stopped early keeps its figures; `"complete": true` at the end), the first
five and the last five of the `--cycles` new-day cycles, and the heap's least-squares slope in
MB per 100 cycles: a lean session keeps heap, seconds and jobs flat. The working lake and landing
are under `--out`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

from lakehouse import sparkstats
from lakehouse.config import load_config
from lakehouse.generator import generate
from lakehouse.pipeline import run as pipeline_run
from lakehouse.session import build_spark
from lakehouse.watch import query_job_entries, watch

ROOT = Path(__file__).resolve().parent.parent
EDGE = 5  # cycles reported at each end


def slope_per_100(points: list[tuple[int, float]]) -> float | None:
    """Least-squares slope of (cycle, heap MB), in MB per 100 cycles (None below two points)."""
    if len(points) < 2:
        return None
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mx, my = statistics.mean(xs), statistics.mean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return round(100 * sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den, 2) if den else None


def summarise(per_cycle: list[dict], users: int, wall_s: float, pid: int | None) -> dict:
    """The bench's summary of the new-day cycles (`per_cycle` without the first, full build)."""
    def mean(rows, key):
        values = [r[key] for r in rows if r[key] is not None]
        return round(statistics.mean(values), 2) if values else None

    first, last = per_cycle[:EDGE], per_cycle[-EDGE:]
    return {
        "cycles": len(per_cycle), "users": users, "wall_s": wall_s, "driver_pid": pid,
        "first": first, "last": last,
        "first_heap_mb": mean(first, "heap_mb"), "last_heap_mb": mean(last, "heap_mb"),
        "first_seconds": mean(first, "seconds"), "last_seconds": mean(last, "seconds"),
        "first_jobs": mean(first, "jobs"), "last_jobs": mean(last, "jobs"),
        "heap_slope_mb_per_100_cycles": slope_per_100([(r["cycle"], r["heap_mb"]) for r in per_cycle
                                                       if r["heap_mb"] is not None]),
        "per_cycle": per_cycle,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=200, help="new-day cycles after the first build")
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--out", default=str(ROOT / "bench" / "out" / "watch"), help="working folder")
    parser.add_argument("--json", default=str(ROOT / "bench" / "out" / "watch.json"), help="summary file")
    args = parser.parse_args(argv)
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    src, landing, lake = out / "src", out / "landing", out / "lake"
    generate(str(src), users=args.users, days=args.cycles + 1, seed=3)
    days = sorted(p for p in (src / "events").iterdir() if p.is_dir())
    shutil.copytree(src / "users", landing / "users")
    shutil.copytree(days[0], landing / "events" / days[0].name)
    pending = iter(days[1:])
    jobs: dict[int, int | None] = {}

    def run_then_land_next(spark, cfg, landing_dir, lake_root, progress=print):
        before = sparkstats.counts(spark)
        summary = pipeline_run(spark, cfg, landing_dir, lake_root, progress=lambda m: None)
        spent = sparkstats.since(spark, before)
        jobs[len(jobs) + 1] = spent.jobs if spent else None
        nxt = next(pending, None)
        if nxt is not None:
            shutil.copytree(nxt, landing / "events" / nxt.name)
        return summary

    cfg = load_config()
    spark = build_spark(cfg, app_name="bench-watch")
    try:
        pid = int(spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid())
    except Exception:  # noqa: BLE001 - no JVM handle
        pid = None
    print(f"bench.watch: driver JVM pid {pid} ({os.getpid()} is Python)", flush=True)
    started = time.perf_counter()
    per_cycle: list[dict] = []
    out_json = Path(args.json)
    out_json.parent.mkdir(parents=True, exist_ok=True)

    def record(cycle) -> None:
        """Each processed cycle after the full build, written as it ends (a stopped bench keeps its figures)."""
        if not cycle.found or cycle.number == 1:
            return
        per_cycle.append({"cycle": cycle.number - 1, "seconds": round(cycle.seconds, 2), "heap_mb": cycle.heap_mb,
                          "jobs": jobs.get(len(jobs)), "released_queries": cycle.released_queries,
                          "query_job_entries": query_job_entries(spark)})
        partial = summarise(per_cycle, args.users, round(time.perf_counter() - started, 1), pid)
        out_json.write_text(json.dumps({**partial, "complete": False}, indent=2))

    watch(spark, cfg, str(landing), str(lake), interval=0.01, max_cycles=args.cycles + 1,
          run=run_then_land_next, progress=lambda m: print(m, flush=True), on_cycle=record)
    wall = round(time.perf_counter() - started, 1)
    summary = {**summarise(per_cycle, args.users, wall, pid), "complete": True}
    out_json.write_text(json.dumps(summary, indent=2))
    print(f"cycles {summary['cycles']} ({args.users} users), wall {wall} s; written to {out_json}")
    print(f"{'cycle':>6} {'heap MB':>8} {'seconds':>8} {'jobs':>5}")
    for row in summary["first"] + summary["last"]:
        print(f"{row['cycle']:>6} {row['heap_mb']!s:>8} {row['seconds']:>8} {row['jobs']!s:>5}")
    print(f"mean heap MB first/last {summary['first_heap_mb']} / {summary['last_heap_mb']}, seconds "
          f"{summary['first_seconds']} / {summary['last_seconds']}, jobs {summary['first_jobs']} / "
          f"{summary['last_jobs']}; heap slope {summary['heap_slope_mb_per_100_cycles']} MB per 100 cycles")
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
