"""The DuckDB peer of the pipeline benchmark: the core metrics from scratch, from the landed files.

    python -m bench.peer --landing DIR [--timezone UTC] [--exclude app_uninstall] [--max-day 30] [--out DIR]

Reads every landed event file (`events/**/*.jsonl` and `*.jsonl.gz`, as the generator writes
them), validates (the required fields event_id, event, ts and user_id present and not blank,
the timestamp parses), keeps one copy per event_id, then computes DAU/WAU/MAU per date,
lifecycle (new, returning, resurrecting) per date and daily retention cohorts (day 0 to
max-day). Prints one JSON line of counts and its own seconds; with --out it also writes the
engagement table (engagement.parquet) so the bench can compare it with gold.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def _sql_string(v: str) -> str:
    return "'" + v.replace("'", "''") + "'"


def compute(landing: str, timezone: str = "UTC", exclude: tuple[str, ...] = ("app_uninstall",), max_day: int = 30,
            out: str | None = None) -> dict:
    """Run the peer's queries; the counts of what it read and computed, and its seconds."""
    import duckdb

    start = time.perf_counter()
    con = duckdb.connect()
    con.execute(f"SET TimeZone = {_sql_string(timezone)}")
    files = _sql_string(str(Path(landing) / "events" / "**" / "*.jsonl*"))
    excluded = ", ".join(_sql_string(e) for e in exclude) or "NULL"
    con.execute(f"""
        CREATE TABLE raw AS
        SELECT trim(event_id) AS event_id, trim(event) AS event, trim(user_id) AS user_id,
               try_cast(trim(ts) AS TIMESTAMPTZ) AS ts, ts IS NOT NULL AND trim(ts) <> '' AS has_ts
        FROM read_json({files}, format = 'newline_delimited', ignore_errors = true,
                       columns = {{'event_id': 'VARCHAR', 'event': 'VARCHAR', 'ts': 'VARCHAR', 'user_id': 'VARCHAR'}})
    """)
    con.execute("""
        CREATE TABLE valid AS
        SELECT * FROM raw
        WHERE coalesce(event_id, '') <> '' AND coalesce(event, '') <> '' AND coalesce(user_id, '') <> '' AND ts IS NOT NULL
    """)
    con.execute("CREATE TABLE events AS SELECT * FROM valid QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY ts) = 1")
    # Activity dates in the reporting timezone (the session's TimeZone), active events only.
    con.execute(f"""
        CREATE TABLE days AS
        SELECT user_id, CAST(ts AS DATE) AS d, count(*) AS events
        FROM events WHERE event NOT IN ({excluded}) GROUP BY 1, 2
    """)
    con.execute("CREATE TABLE first AS SELECT user_id, min(d) AS f FROM days GROUP BY 1")
    con.execute("""
        CREATE TABLE cal AS
        SELECT CAST(range AS DATE) AS d FROM range((SELECT min(d) FROM days), (SELECT max(d) FROM days) + 1, INTERVAL 1 DAY)
    """)
    con.execute("""
        CREATE TABLE engagement AS
        SELECT c.d AS activity_date,
               count(DISTINCT e.user_id) FILTER (WHERE e.d = c.d) AS dau,
               count(DISTINCT e.user_id) FILTER (WHERE e.d > c.d - 7) AS wau,
               count(DISTINCT e.user_id) AS mau
        FROM cal c LEFT JOIN days e ON e.d BETWEEN c.d - 29 AND c.d GROUP BY 1
    """)
    con.execute("""
        CREATE TABLE lifecycle AS
        WITH x AS (
            SELECT e.user_id, e.d, f.f, lag(e.d) OVER (PARTITION BY e.user_id ORDER BY e.d) AS prev
            FROM days e JOIN first f USING (user_id))
        SELECT d AS activity_date, count(*) FILTER (WHERE d = f) AS new,
               count(*) FILTER (WHERE d <> f AND prev = d - 1) AS returning,
               count(*) FILTER (WHERE d <> f AND prev < d - 1) AS resurrecting
        FROM x GROUP BY 1
    """)
    con.execute(f"""
        CREATE TABLE retention AS
        SELECT f.f AS cohort_date, e.d - f.f AS day_n, count(*) AS users
        FROM first f JOIN days e USING (user_id) WHERE e.d - f.f BETWEEN 0 AND {int(max_day)} GROUP BY 1, 2
    """)
    counts = {name: con.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
              for name in ("raw", "valid", "events", "days", "engagement", "lifecycle", "retention")}
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        con.execute(f"COPY (SELECT * FROM engagement ORDER BY 1) TO {_sql_string(str(Path(out) / 'engagement.parquet'))} (FORMAT parquet)")
    seconds = time.perf_counter() - start
    return {"lines": counts["raw"], "valid": counts["valid"], "events": counts["events"],
            "duplicates": counts["valid"] - counts["events"], "user_days": counts["days"],
            "dates": counts["engagement"], "retention_rows": counts["retention"], "seconds": round(seconds, 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--landing", required=True)
    parser.add_argument("--timezone", default="UTC")
    parser.add_argument("--exclude", action="append", help="an event that is not activity (repeatable; default app_uninstall)")
    parser.add_argument("--max-day", type=int, default=30)
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    exclude = tuple(args.exclude) if args.exclude else ("app_uninstall",)
    print(json.dumps(compute(args.landing, args.timezone, exclude, args.max_day, args.out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
