"""Shared argument handling of the spark-submit entry points (config, session, run, summary)."""

from __future__ import annotations

import argparse
import sys

from lakehouse import pipeline
from lakehouse.config import load_config, parse_set
from lakehouse.errors import describe
from lakehouse.session import build_spark


def run_layer(only: str | None, argv: list[str] | None = None) -> int:
    """Parse flags, build config and the session, run `only` (or every) layer, print the summary."""
    parser = argparse.ArgumentParser(description=f"lakehouse {only or 'pipeline'} job")
    parser.add_argument("--landing")
    parser.add_argument("--lake", required=True)
    parser.add_argument("--conf", dest="env")
    parser.add_argument("--timezone")
    parser.add_argument("--set", action="append", default=[])
    parser.add_argument("--full-refresh", action="store_true")
    args = parser.parse_args(argv)
    try:
        overrides = parse_set(args.set) | ({"timezone": args.timezone} if args.timezone else {})
        cfg = load_config(env=args.env, overrides=overrides)
        spark = build_spark(cfg, app_name=f"lakehouse-{only or 'pipeline'}", uris=(args.landing, args.lake))
        summary = pipeline.run(spark, cfg, args.landing, args.lake, only=only, full_refresh=args.full_refresh,
                               register=False)
        print(summary.render())
        return 0
    except Exception as exc:  # noqa: BLE001 - one line, non-zero exit
        print(f"lakehouse job: error: {describe(exc)}", file=sys.stderr)
        return 2
