"""Pipeline benchmark: full build and one incremental day over ~1M generated events, vs DuckDB.

    python -m bench.pipeline [--users 12500] [--days 90] [--out bench/out]

Times are wall-clock seconds of real `lakehouse run` processes (JVM start included). The DuckDB
baseline computes DAU/WAU/MAU, lifecycle and retention straight from the landed JSON files.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from lakehouse.generator import generate

ROOT = Path(__file__).resolve().parent.parent
LAKEHOUSE = [sys.executable, "-m", "lakehouse.cli"]


def _stage(out: Path, users: int, days: int) -> tuple[Path, Path]:
    """Generate days+1 days once; land the first `days` days, keep the last one for the incremental run."""
    source = out / f"source-{users}x{days + 1}"
    if not (source / "events").is_dir():
        shutil.rmtree(source, ignore_errors=True)
        generate(str(source), users=users, days=days + 1, seed=1)
    landing = out / "landing"
    shutil.rmtree(landing, ignore_errors=True)
    shutil.copytree(source / "users", landing / "users")
    day_dirs = sorted((source / "events").iterdir())
    for d in day_dirs[:-1]:
        shutil.copytree(d, landing / "events" / d.name)
    return landing, day_dirs[-1]


def _run(landing: Path, lake: Path) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(LAKEHOUSE + ["run", "--landing", str(landing), "--lake", str(lake)],
                          capture_output=True, text=True, cwd=ROOT)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"lakehouse run failed: {proc.stderr.strip().splitlines()[-1:]}")
    return elapsed, proc.stdout


def duckdb_baseline(landing: Path) -> float:
    """DAU/WAU/MAU, lifecycle and daily retention from the raw JSON files, in DuckDB."""
    import duckdb

    start = time.perf_counter()
    con = duckdb.connect()
    con.execute(f"""
        CREATE TABLE ev AS
        SELECT DISTINCT user_id, CAST(CAST(ts AS TIMESTAMPTZ) AT TIME ZONE 'UTC' AS DATE) AS d
        FROM read_json('{landing}/events/**/*.jsonl*', format='newline_delimited',
                       columns={{'user_id': 'VARCHAR', 'ts': 'VARCHAR', 'event': 'VARCHAR'}})
        WHERE event <> 'app_uninstall'
    """)
    con.execute("""
        CREATE TABLE cal AS SELECT range::DATE AS d FROM range((SELECT min(d) FROM ev), (SELECT max(d) FROM ev) + 1, INTERVAL 1 DAY);
        CREATE TABLE first AS SELECT user_id, min(d) AS f FROM ev GROUP BY 1;
        SELECT c.d,
               count(DISTINCT e.user_id) FILTER (WHERE e.d = c.d) AS dau,
               count(DISTINCT e.user_id) FILTER (WHERE e.d > c.d - 7) AS wau,
               count(DISTINCT e.user_id) AS mau
        FROM cal c JOIN ev e ON e.d BETWEEN c.d - 29 AND c.d GROUP BY 1;
    """).fetchall()
    con.execute("""
        WITH x AS (
            SELECT e.user_id, e.d, f.f, lag(e.d) OVER (PARTITION BY e.user_id ORDER BY e.d) AS prev
            FROM ev e JOIN first f USING (user_id))
        SELECT d, count(*) FILTER (WHERE d = f) AS new,
               count(*) FILTER (WHERE d <> f AND prev = d - 1) AS returning,
               count(*) FILTER (WHERE d <> f AND (prev IS NULL OR prev < d - 1)) AS resurrecting
        FROM x GROUP BY 1
    """).fetchall()
    con.execute("""
        SELECT f.f AS cohort, e.d - f.f AS day_n, count(DISTINCT e.user_id)
        FROM first f JOIN ev e USING (user_id) WHERE e.d - f.f BETWEEN 0 AND 30 GROUP BY 1, 2
    """).fetchall()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=12500)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--out", default=str(ROOT / "bench" / "out"))
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    landing, last_day = _stage(out, args.users, args.days)
    events = sum(1 for f in (landing / "events").rglob("*.jsonl") for _ in open(f, "rb"))
    events += sum(1 for f in (landing / "events").rglob("*.jsonl.gz") for _ in __import__("gzip").open(f, "rb"))
    lake = out / "lake"
    shutil.rmtree(lake, ignore_errors=True)
    full, full_out = _run(landing, lake)
    shutil.copytree(last_day, landing / "events" / last_day.name)
    incremental, inc_out = _run(landing, lake)
    noop, _ = _run(landing, lake)
    duck = duckdb_baseline(landing)
    results = {
        "events": events, "users": args.users, "days": args.days,
        "full_build_s": round(full, 1), "events_per_s": round(events / full),
        "incremental_day_s": round(incremental, 1), "nothing_new_s": round(noop, 1),
        "duckdb_baseline_s": round(duck, 2), "full_vs_duckdb": round(full / duck, 1),
    }
    (out / "pipeline-results.json").write_text(json.dumps(results, indent=2))
    print(full_out)
    print(inc_out)
    for key, value in results.items():
        print(f"{key:>20}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
