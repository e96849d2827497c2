"""`lakehouse` command line: generate, run, submit, sql, serve-sql, dashboard, forget, maintain."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time

from lakehouse.config import load_config, parse_set


class UserError(RuntimeError):
    """An error the user can fix: printed as one line, exit code 2."""


def _common(p: argparse.ArgumentParser, landing: bool = False) -> None:
    if landing:
        p.add_argument("--landing", help="landing folder or URI (events/ and users/ below it)")
    p.add_argument("--lake", required=True, help="lake root folder or URI")
    p.add_argument("--conf", dest="env", help="config environment: conf/<ENV>/ overrides conf/base/")
    p.add_argument("--timezone", help="reporting timezone (IANA name), overrides the config")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override any config key (repeatable)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every sub-command."""
    parser = argparse.ArgumentParser(prog="lakehouse", description="Product-analytics lakehouse on Spark and Delta")
    sub = parser.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", help="write a realistic demo landing folder")
    g.add_argument("--out", required=True)
    g.add_argument("--users", type=int, default=2000)
    g.add_argument("--days", type=int, default=90)
    g.add_argument("--seed", type=int, default=42)
    g.add_argument("--start", help="first day, YYYY-MM-DD")
    g.add_argument("--format", choices=["landing", "segment", "csv", "sql"], default="landing",
                   help="the shape to write: the landing folder (default), Segment calls, CSV exports, or a PostgreSQL "
                        "script loading events_raw (psql -f OUT/events_raw.sql) (docs/sources.md)")

    r = sub.add_parser("run", help="run bronze, silver and gold (or --only one layer)")
    _common(r, landing=True)
    r.add_argument("--source", action="append", metavar="KIND:URI",
                   help="a source to ingest with its kind's default mapping (repeatable): landing:DIR, segment:DIR, "
                        "csv:DIR, jdbc:URL (docs/sources.md); without --landing or --source, the config's `sources:`")
    r.add_argument("--only", choices=["bronze", "silver", "gold"])
    r.add_argument("--full-refresh", action="store_true", help="recompute gold even when nothing new arrived")
    r.add_argument("--wait", action="store_true", help="wait for another run on the same lake instead of exiting")
    r.add_argument("--watch", action="store_true",
                   help="keep one Spark session and process each new batch of landed files as it arrives "
                        "(Ctrl-C or SIGTERM stops between batches)")
    r.add_argument("--interval", type=float, default=60.0, metavar="SECONDS",
                   help="with --watch: seconds between looks at the landing folder (default 60)")
    r.add_argument("--max-cycles", type=int, metavar="N", help="with --watch: stop after N cycles")

    sub.add_parser("submit", add_help=False,
                   help="spark-submit with this environment's Spark, Python and Delta jars: "
                        "lakehouse submit [spark-submit options] jobs/pipeline.py --landing DIR --lake DIR "
                        "(docs/deploy.md)")

    q = sub.add_parser("sql", help="run a SQL query over bronze.*, silver.*, gold.* and print the result")
    q.add_argument("query")
    _common(q)
    q.add_argument("--format", choices=["table", "csv", "json"], default="table")
    q.add_argument("--limit", type=int, default=1000, help="rows printed at most")

    s = sub.add_parser("serve-sql", help="serve the lake read-only to BI tools over JDBC/ODBC (Spark's Thrift server, "
                                         "HiveServer2 protocol); docs/bi-tools.md")
    _common(s)
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    s.add_argument("--port", type=int, default=10000, help="port to listen on (default 10000)")
    s.add_argument("--users-file", metavar="FILE",
                   help="password file written by `lakehouse serve-sql-user` (default: serve_sql.users_file); "
                        "without one the endpoint is open to anyone who can reach it")

    u = sub.add_parser("serve-sql-user", help="add a user (or change its password) in a serve-sql password file")
    u.add_argument("--users-file", required=True, metavar="FILE", help="the password file (created if missing)")
    u.add_argument("--user", required=True, help="user name")
    u.add_argument("--password-stdin", action="store_true",
                   help="read the password from standard input instead of prompting")
    u.add_argument("--remove", action="store_true", help="remove the user instead")

    d = sub.add_parser("dashboard", help="serve the Dash dashboard over the gold tables")
    d.add_argument("--lake", required=True)
    d.add_argument("--host", default="127.0.0.1")
    d.add_argument("--port", type=int, default=8050)
    d.add_argument("--debug", action="store_true")

    f = sub.add_parser("forget", help="erase users from every table and its history (right to be forgotten)")
    _common(f)
    f.add_argument("--user-id", action="append", required=True, dest="user_ids", metavar="ID", help="id to erase (repeatable)")
    _maintenance_flags(f)

    m = sub.add_parser("maintain", help="compact small files (OPTIMIZE, ZORDER BY) and vacuum every table")
    _common(m)
    _maintenance_flags(m)
    return parser


def _maintenance_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--retention-hours", type=int, metavar="H",
                   help="vacuum files unreferenced for more than H hours (default: vacuum_retention_hours, 168); "
                        "0 deletes them now")
    p.add_argument("--wait", action="store_true", help="wait for a run on the same lake instead of exiting")


def _config(args) -> dict:
    overrides = parse_set(getattr(args, "set", None))
    if getattr(args, "timezone", None):
        overrides["timezone"] = args.timezone
    return load_config(env=getattr(args, "env", None), overrides=overrides)


def _spark(cfg: dict, app: str, *uris: str | None):
    """The Spark session; with an `s3://`/`s3a://` landing or lake among `uris`, also hadoop-aws and s3a settings."""
    from lakehouse.session import build_spark

    return build_spark(cfg, app_name=app, uris=uris)


def _check_object_store(*uris: str | None) -> None:
    """Before Spark starts: the object-store URIs among `uris` can be listed with the AWS variables'
    credentials (one line naming the fix otherwise; nothing is written)."""
    from lakehouse import objectstore

    objectstore.check_access(uris)


def _check_lock_free(lake: str, wait: bool) -> None:
    """Refuse in a second, before Spark starts, a run on an object-store lake whose lock another run holds."""
    from lakehouse import objectstore

    if wait or not objectstore.is_s3(lake):
        return
    info = objectstore.peek_lock(lake)
    if info is not None:
        raise UserError(objectstore.describe_holder(objectstore.lock_uri(lake), info)
                        + "; try again when it ends or pass --wait")


def cmd_generate(args) -> int:
    from lakehouse import shapes

    start = dt.date.fromisoformat(args.start) if args.start else None
    t0 = time.perf_counter()
    summary = shapes.generate(args.out, args.format, users=args.users, days=args.days, seed=args.seed, start=start,
                              progress=lambda msg: print(msg, flush=True))
    print(f"generated {summary['events']} events for {summary['users']} users in {time.perf_counter() - t0:.1f}s -> {args.out}")
    return 0


def cmd_run(args) -> int:
    from lakehouse import pipeline, progress

    from lakehouse.sources import SourceError, from_run

    cfg = _config(args)
    try:
        sources = from_run(cfg, args.landing, args.source)
    except SourceError as exc:
        raise UserError(str(exc)) from None
    if args.only in (None, "bronze") and not sources:
        raise UserError("--landing DIR or --source KIND:URI is required (or a `sources:` list in the config)")
    for src in sources:
        if src.kind != "jdbc" and "://" not in src.uri and not os.path.isdir(src.uri):
            raise UserError(f"{'landing folder' if src.kind == 'landing' else f'source {src.name}: folder'} not found: {src.uri}")
    if args.watch:
        if args.only or args.full_refresh:
            raise UserError("--watch runs every layer on new data: drop --only / --full-refresh")
        if not sources:
            raise UserError("--watch needs --landing or --source (what to watch)")
        if args.interval <= 0:
            raise UserError(f"--interval: must be a number of seconds above 0, got {args.interval:g}")
        if args.max_cycles is not None and args.max_cycles < 1:
            raise UserError(f"--max-cycles: must be a whole number >= 1, got {args.max_cycles}")
    elif args.max_cycles is not None:
        raise UserError("--max-cycles goes with --watch")
    _check_lake_writable(args.lake)
    locations = [s.uri for s in sources if s.kind != "jdbc"]
    _check_object_store(*locations, args.lake)
    _check_lock_free(args.lake, args.wait or args.watch)
    t0 = time.perf_counter()
    spark = _spark(cfg, "lakehouse-run", *locations, args.lake)
    print(f"spark ready in {time.perf_counter() - t0:.1f}s", flush=True)
    if args.watch:
        from lakehouse.watch import watch

        # A long-running service: plain lines (one per step, gold table and cycle), as in logs.
        watch(spark, cfg, sources, args.lake, interval=args.interval, max_cycles=args.max_cycles,
              progress=lambda m: print(m, flush=True))
        return 0
    # A live display on a terminal; plain lines (one per step and gold table, with seconds) in logs and CI.
    with progress.auto() as reporter:
        summary = pipeline.run(spark, cfg, sources, args.lake, only=args.only, full_refresh=args.full_refresh,
                               wait=args.wait, progress=reporter, register=False)
    print(summary.render())
    print(f"total {time.perf_counter() - t0:.1f}s")
    return 0


def _check_lake_writable(lake: str) -> None:
    from lakehouse.tables import Lake, local_path

    if not Lake(lake).is_local:
        return
    probe = local_path(lake)
    while probe and not os.path.exists(probe):
        probe = os.path.dirname(probe.rstrip("/")) or "."
    if not os.path.isdir(probe) or not os.access(probe, os.W_OK):
        raise UserError(f"lake folder is not writable: {lake}")


def cmd_sql(args) -> int:
    from lakehouse.tables import Lake

    cfg = _config(args)
    _check_object_store(args.lake)
    spark = _spark(cfg, "lakehouse-sql", args.lake)
    lake = Lake(args.lake)
    if not lake.register(spark):
        raise UserError(f"no tables found in lake {args.lake} (run `lakehouse run` first)")
    df = spark.sql(args.query)
    rows = df.limit(args.limit).collect()
    cols = df.columns
    print(format_rows(cols, [tuple(r) for r in rows], args.format))
    return 0


def format_rows(cols: list[str], rows: list[tuple], fmt: str) -> str:
    """Render query rows as an aligned table, CSV or JSON lines."""
    if fmt == "json":
        return "\n".join(json.dumps(dict(zip(cols, r)), default=str) for r in rows)
    if fmt == "csv":
        import csv
        import io

        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(cols)
        writer.writerows(["" if v is None else v for v in r] for r in rows)
        return buf.getvalue().rstrip("\n")
    text = [[("NULL" if v is None else str(v)) for v in r] for r in rows]
    widths = [max([len(c)] + [len(r[i]) for r in text]) for i, c in enumerate(cols)]
    line = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
    out = [line, "| " + " | ".join(c.ljust(w) for c, w in zip(cols, widths)) + " |", line]
    out += ["| " + " | ".join(v.ljust(w) for v, w in zip(r, widths)) + " |" for r in text]
    out.append(line)
    out.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(out)


def cmd_serve_sql(args) -> int:
    from lakehouse import serve

    cfg = _config(args)
    users_file = args.users_file or (cfg.get("serve_sql") or {}).get("users_file") or None
    return serve.serve(cfg, args.lake, host=args.host, port=args.port, users_file=users_file,
                       say=lambda m: print(m, flush=True))


def cmd_serve_sql_user(args) -> int:
    import getpass

    from lakehouse import passwords

    if args.remove:
        passwords.remove_user(args.users_file, args.user)
        print(f"removed {args.user} from {args.users_file}")
        return 0
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"password for {args.user}: ")
        if getpass.getpass("again: ") != password:
            raise UserError("the two passwords differ")
    passwords.set_user(args.users_file, args.user, password)
    print(f"{args.user} can now log in to serve-sql with --users-file {args.users_file}")
    return 0


def cmd_dashboard(args) -> int:
    from lakehouse.objectstore import is_s3

    if is_s3(args.lake):
        _check_object_store(args.lake)
    elif not os.path.isdir(args.lake):
        raise UserError(f"lake folder not found: {args.lake}")
    from dashboard import app

    app.main(lake=args.lake, host=args.host, port=args.port, debug=args.debug)
    return 0


def _maintenance_config(args) -> dict:
    """The config with --retention-hours applied, after checking the lake folder exists."""
    from lakehouse.tables import Lake, local_path

    if Lake(args.lake).is_local and not os.path.isdir(local_path(args.lake)):
        raise UserError(f"lake folder not found: {args.lake}")
    _check_object_store(args.lake)
    cfg = _config(args)
    if args.retention_hours is not None:
        if args.retention_hours < 0:
            raise UserError(f"--retention-hours: must be a whole number >= 0, got {args.retention_hours}")
        cfg["vacuum_retention_hours"] = args.retention_hours
    from lakehouse import maintenance

    maintenance.check_settings(cfg)
    maintenance.existing_tables(args.lake)  # before Spark starts
    return cfg


def cmd_forget(args) -> int:
    from lakehouse import maintenance

    ids = maintenance.check_ids(args.user_ids)
    cfg = _maintenance_config(args)
    spark = _spark(cfg, "lakehouse-forget", args.lake)
    print(maintenance.forget(spark, cfg, args.lake, ids, wait=args.wait, progress=lambda m: print(m, flush=True)))
    return 0


def cmd_maintain(args) -> int:
    from lakehouse import maintenance

    cfg = _maintenance_config(args)
    spark = _spark(cfg, "lakehouse-maintain", args.lake)
    print(maintenance.maintain(spark, cfg, args.lake, wait=args.wait))
    return 0


COMMANDS = {
    "generate": cmd_generate, "run": cmd_run, "sql": cmd_sql, "serve-sql": cmd_serve_sql,
    "serve-sql-user": cmd_serve_sql_user, "dashboard": cmd_dashboard,
    "forget": cmd_forget, "maintain": cmd_maintain,
}


def cmd_submit(args: list[str]) -> int:
    """`lakehouse submit`: spark-submit's options and the job's arguments, passed on as they are."""
    from lakehouse.submit import main as submit

    return submit(args)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `lakehouse` console script."""
    argv = sys.argv[1:] if argv is None else argv
    raw = argv[:1] == ["submit"]
    args = None if raw else build_parser().parse_args(argv)
    name = "submit" if raw else args.command
    try:
        return cmd_submit(argv[1:]) if raw else COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print("lakehouse: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - every error ends as one line and a non-zero exit
        from lakehouse.errors import describe

        print(f"lakehouse {name}: error: {describe(exc)}", file=sys.stderr)
        if os.environ.get("LAKEHOUSE_DEBUG"):
            raise
        return 2


if __name__ == "__main__":
    sys.exit(main())
