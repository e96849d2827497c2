"""Watch-mode bench: many cycles in one Spark session, each landing one new day of events.

    python -m bench.watch [--cycles 200] [--users 20] [--out bench/out/watch]

Every cycle of `lakehouse.watch.watch` finds one new day file and runs the whole pipeline on it.
Prints and writes (`<out>/watch-results.json`) each processed cycle's seconds and the driver's
used heap after a full GC, and the first and last ten cycles' means: a lean session keeps both flat.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from pathlib import Path

from lakehouse.config import load_config
from lakehouse.generator import generate
from lakehouse.pipeline import run as pipeline_run
from lakehouse.session import build_spark
from lakehouse.watch import watch

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=200)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--out", default=str(ROOT / "bench" / "out" / "watch"))
    args = parser.parse_args(argv)
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    src, landing, lake = out / "src", out / "landing", out / "lake"
    generate(str(src), users=args.users, days=args.cycles + 1, seed=3)
    days = sorted(p for p in (src / "events").iterdir() if p.is_dir())
    shutil.copytree(src / "users", landing / "users")
    shutil.copytree(days[0], landing / "events" / days[0].name)
    pending = iter(days[1:])

    def run_then_land_next(spark, cfg, landing_dir, lake_root, progress=print):
        summary = pipeline_run(spark, cfg, landing_dir, lake_root, progress=lambda m: None)
        nxt = next(pending, None)
        if nxt is not None:
            shutil.copytree(nxt, landing / "events" / nxt.name)
        return summary

    cfg = load_config()
    spark = build_spark(cfg, app_name="bench-watch")
    started = time.perf_counter()
    result = watch(spark, cfg, str(landing), str(lake), interval=0.01, max_cycles=args.cycles + 1,
                   run=run_then_land_next, progress=lambda m: print(m, flush=True))
    cycles = [c for c in result.processed()]
    first, last = cycles[1:11], cycles[-10:]  # cycle 1 builds the lake in full: left out
    summary = {
        "cycles": len(cycles), "users": args.users, "wall_s": round(time.perf_counter() - started, 1),
        "first10_mean_s": round(statistics.mean(c.seconds for c in first), 2) if first else None,
        "last10_mean_s": round(statistics.mean(c.seconds for c in last), 2) if last else None,
        "first10_heap_mb": round(statistics.mean(c.heap_mb for c in first), 1) if first else None,
        "last10_heap_mb": round(statistics.mean(c.heap_mb for c in last), 1) if last else None,
        "per_cycle": [{"cycle": c.number, "seconds": round(c.seconds, 2), "heap_mb": c.heap_mb} for c in cycles],
    }
    (out / "watch-results.json").write_text(json.dumps(summary, indent=2))
    for key in ("cycles", "wall_s", "first10_mean_s", "last10_mean_s", "first10_heap_mb", "last10_heap_mb"):
        print(f"{key:>16}: {summary[key]}")
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
