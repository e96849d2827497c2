"""Silver's JSON parse, two ways, on one bronze table: the VARIANT route silver uses against
`from_json` with the contract's explicit schema.

    python -m bench.parse --lake bench/out/run-2m/lake [--rounds 3]

The lake's `bronze.events` lines are cached in memory first, so every route reads the same rows.
Each round runs four queries and prints their wall seconds and the driver JVM's CPU seconds
(`utime + stime` from /proc, which stays comparable when the machine is shared; local mode only):

- `variant`: `lakehouse.transforms.silver.parse_events` (every quarantine reason), rows per reason;
- `from_json`: `from_json` with the explicit schema and the same columns typed (numbers and
  timestamp by plain casts), judged only on what it can still tell: missing fields, a bad
  timestamp, a negative amount;
- `variant_only` / `from_json_only`: the parse and one field.

`from_json` cannot keep the contract's type reasons (docs/performance.md, "The JSON parse").
"""

from __future__ import annotations

import argparse
import os
import time

from pyspark.sql import functions as F

from bench.peak import stat_fields
from lakehouse.config import load_config
from lakehouse.session import build_spark, layer_conf, tuned
from lakehouse.transforms.silver import CONTEXT_FIELDS, NUMERIC_TYPES, PROPERTY_FIELDS, parse_events

REQUIRED = ("event_id", "event", "ts", "user_id")


def _schema() -> str:
    """The event line as `from_json` reads it: numbers as text, typed afterwards as silver does."""
    ctx = ", ".join(f"`{c}`: string" for c in CONTEXT_FIELDS)
    props = ", ".join(f"`{n}`: {'string' if t in NUMERIC_TYPES else t}" for n, _, t in PROPERTY_FIELDS)
    return (f"struct<event_id: string, event: string, ts: string, user_id: string, session_id: string, "
            f"context: struct<{ctx}>, properties: struct<{props}>>")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lake", required=True, help="a lake with bronze.events (e.g. bench/out/run-2m/lake)")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    cfg = load_config()
    spark = build_spark(cfg, "bench-parse")
    pid = spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid()
    tick = os.sysconf("SC_CLK_TCK")

    def cpu() -> float:
        fields = stat_fields(pid)
        return (int(fields[11]) + int(fields[12])) / tick

    bronze = spark.read.format("delta").load(os.path.join(args.lake, "bronze", "events")).select(
        "value", "value_bytes", "source_file", "file_modified_at", "line_id", "batch_id", "ingested_at").cache()
    print(f"bronze.events: {bronze.count():,} lines", flush=True)

    def from_json_route():
        j = bronze.select(F.from_json("value", _schema()).alias("j")).select("j.*")
        typed = j.select(
            *[F.trim(c).alias(c) for c in REQUIRED],
            *[F.col(f"context.{c}") for c in CONTEXT_FIELDS],
            *[(F.trim(F.col(f"properties.{n}")).try_cast(t) if t in NUMERIC_TYPES else F.col(f"properties.{n}")).alias(n)
              for n, _, t in PROPERTY_FIELDS],
        ).withColumn("ts", F.col("ts").try_cast("timestamp"))
        reason = F.coalesce(*[F.when(F.col(c).isNull() | (F.col(c) == ""), F.lit(f"missing_{c}")) for c in REQUIRED if c != "ts"],
                            F.when(F.col("ts").isNull(), F.lit("bad_timestamp")),
                            F.when(F.col("amount") < 0, F.lit("negative_amount")))
        return typed.groupBy(reason.alias("reason")).count().collect()

    routes = {
        "variant": lambda: bronze.transform(parse_events()).groupBy("_error").count().collect(),
        "from_json": from_json_route,
        "variant_only": lambda: bronze.select(F.expr("try_variant_get(try_parse_json(value), '$.event_id', 'string')").alias("x"))
        .groupBy(F.col("x").isNull()).count().collect(),
        "from_json_only": lambda: bronze.select(F.from_json("value", _schema()).alias("j"))
        .groupBy(F.col("j.event_id").isNull()).count().collect(),
    }
    with tuned(spark, layer_conf(cfg, "silver", 2_000_000)):
        for rnd in range(args.rounds):
            for name, route in routes.items():
                c, t = cpu(), time.perf_counter()
                rows = route()
                print(f"round {rnd} {name:15s} wall {time.perf_counter() - t:6.1f} s  driver CPU {cpu() - c:6.1f} s  "
                      f"{sorted((str(r[0]), r[1]) for r in rows)[:3]}", flush=True)
    spark.stop()


if __name__ == "__main__":
    main()
