"""Fixed cost of a pipeline run in a warm session: what tests, notebooks and watch mode pay per run.

    python -m bench.warm [--users 30] [--days 10] [--runs 3] [--seed 7] [--plain-py4j]

Generates a small landing once, builds one Spark session with the project's builder, then runs
`pipeline.run` `--runs` times, each on a fresh lake, and prints each run's seconds, seconds per
layer and Spark jobs per layer. The first run includes the JVM's warm-up (class loading, JIT);
the later ones are the fixed cost a long-lived session pays for every run on small data. Each
run's CPU seconds are those of this process and its driver JVM together (Linux; `-` elsewhere).
`--plain-py4j` leaves py4j as shipped (without `lakehouse.py4jcalls`), for comparison.
Set LAKEHOUSE_GOLD_TRACE=1 to see gold's steps. Results go to `<out>/warm.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def cpu_seconds(jvm_pid: int) -> float | None:
    """CPU seconds (user + system) of this process and the JVM `jvm_pid` so far; None without /proc."""
    try:
        fields = Path(f"/proc/{jvm_pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    own = os.times()
    return own.user + own.system + (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=30)
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", default=str(ROOT / "bench" / "out"))
    parser.add_argument("--plain-py4j", action="store_true", help="without lakehouse.py4jcalls")
    args = parser.parse_args(argv)
    if args.plain_py4j:
        from lakehouse import py4jcalls

        py4jcalls.install = lambda: None

    from lakehouse import pipeline
    from lakehouse.config import load_config
    from lakehouse.generator import generate
    from lakehouse.session import build_spark

    cfg = load_config(environ={}, root=ROOT / "conf")
    spark = build_spark(cfg, app_name="bench-warm")
    jvm_pid = spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid()
    runs = []
    with tempfile.TemporaryDirectory(prefix="bench-warm-") as tmp:
        root = Path(tmp)
        generate(str(root / "landing"), users=args.users, days=args.days, seed=args.seed)
        for i in range(args.runs):
            start, cpu_start = time.perf_counter(), cpu_seconds(jvm_pid)
            result = pipeline.run(spark, cfg, str(root / "landing"), str(root / f"lake{i}"), progress=None)
            seconds = time.perf_counter() - start
            cpu = None if cpu_start is None else round(cpu_seconds(jvm_pid) - cpu_start, 1)
            runs.append({"seconds": round(seconds, 1), "cpu_seconds": cpu,
                         "layers": {k: round(v, 1) for k, v in result.durations.items()}, "jobs": dict(result.jobs)})
            layers = ", ".join(f"{k} {v:.1f}s" for k, v in result.durations.items())
            print(f"run {i + 1}: {seconds:.1f}s, CPU {'-' if cpu is None else f'{cpu:.1f}s'} ({layers}); "
                  f"jobs {dict(result.jobs)}", flush=True)
    spark.stop()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "warm.json").write_text(json.dumps({"users": args.users, "days": args.days, "seed": args.seed,
                                               "plain_py4j": args.plain_py4j, "runs": runs}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
