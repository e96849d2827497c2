"""Database sources (kind `jdbc`): a table or query read with Spark's JDBC source by a watermark column.

Exactly once, with bronze's manifest (`ops.ingest_files`) and no state of its own:

* planning reads `hi` = the highest watermark now in the database (less `lag` seconds for a
  timestamp watermark) and records one manifest row per source and batch whose `file_path` is the
  *origin* `jdbc:<source>:<table or 'query'>:<watermark>:(<lo>,<hi>]`, `lo` being the `hi` of the
  source's last committed batch (empty: from the start) and `size` the rows in that range;
* the bronze write reads exactly `watermark > lo AND watermark <= hi` (pushed down to the
  database), so a run killed between planning and commit replays the same rows, and Delta's
  idempotent write keeps a batch from landing twice;
* nothing above `lo` (or within `lag` of now) plans nothing.

Bounds are the database's own text of the value (`CAST(MAX(w) AS VARCHAR)`), compared back as
quoted literals, so a timestamp keeps its microseconds and its offset. Credentials: `user` and the
password of `lakehouse.sources.jdbc_password` go to the driver as connection properties, never in
the URL; every error is one line through `redact`, with the password replaced if it shows up.
"""

from __future__ import annotations

import datetime as dt
import re

import pyspark.sql.functions as F
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import DateType, DecimalType, IntegralType, StructType, TimestampNTZType, TimestampType

from lakehouse.sources import Source, SourceError, jdbc_password, redact
from lakehouse.transforms.sources import header_name

# Driver classes for common JDBC URL prefixes (the jar itself comes from spark.packages).
DRIVERS = {"postgresql": "org.postgresql.Driver", "mysql": "com.mysql.cj.jdbc.Driver",
           "mariadb": "org.mariadb.jdbc.Driver", "sqlserver": "com.microsoft.sqlserver.jdbc.SQLServerDriver"}
# How a database row becomes bronze text: JSON, timestamps as ISO-8601 with offset and microseconds.
JSON_OPTIONS = {"timestampFormat": "yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX", "timestampNTZFormat": "yyyy-MM-dd'T'HH:mm:ss.SSSSSS"}
_ORIGIN = re.compile(r"^jdbc:(?P<name>[^:]+):(?P<relation>.*):(?P<watermark>[^:(]+):\((?P<lo>[^,]*),(?P<hi>[^,\]]*)\]$")
_ERRORS = (  # the database's own message in a Java exception's text, first match wins
    r"PSQLException: (?:FATAL|ERROR): ([^\n]*)", r"\w*SQL\w*Exception: ([^\n]*)", r"ConnectException: ([^\n]*)",
    r"ClassNotFoundException: ([^\n]*)",
)


def origin(src: Source, lo: str, hi: str) -> str:
    """The manifest's `file_path` of a batch of `src`: its name, relation, watermark and range (no credentials)."""
    relation = "query" if src.options.get("query") else str(src.options["table"])
    return f"jdbc:{src.name}:{relation}:{src.options['watermark']}:({lo},{hi}]"


def parse_origin(text: str) -> dict | None:
    """An origin's parts (name, relation, watermark, lo, hi), or None when `text` is not one."""
    match = _ORIGIN.match(text or "")
    return match.groupdict() if match else None


def _relation(src: Source) -> str:
    return f"({src.options['query']}) lakehouse_q" if src.options.get("query") else str(src.options["table"])


def _quote(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _java_causes(exc: BaseException) -> list[str]:
    """`Class: message` of the Java exception behind a PySpark error and of each of its causes (Spark
    wraps a driver's SQLException in its own FAILED_JDBC error, whose text alone says little)."""
    throwable = getattr(exc, "_origin", None) or getattr(exc, "java_exception", None)
    out: list[str] = []
    try:
        while throwable is not None and len(out) < 10:
            out.append(f"{throwable.getClass().getName()}: {throwable.getMessage()}")
            throwable = throwable.getCause()
    except Exception:  # noqa: BLE001 - a closed gateway: the Python text has to do
        pass
    return out


def _reason(exc: BaseException, password: str | None) -> str:
    """A JDBC failure's cause in one line, redacted (never a Java stack trace, never the password)."""
    from lakehouse.errors import describe

    text = "\n".join([str(exc), *_java_causes(exc)])
    found = next((m.group(1) for m in (re.search(p, text) for p in _ERRORS) if m), None)
    line = (found or describe(exc)).strip().rstrip(".")
    network = re.search(r"java\.net\.(\w+Exception): ([^\n]*)", text)  # e.g. an unknown host, below the driver's message
    if network and network.group(2) not in line:
        line += f" ({network.group(1)}: {network.group(2)})"
    if password:
        line = line.replace(password, "***")
    return redact(line)


def _load(spark: SparkSession, src: Source, sql: str | None = None) -> DataFrame:
    """A DataFrame of `sql` (a query) or of the source's relation, its schema already read from the
    database: a connection, login or SQL problem fails here as a SourceError naming the source."""
    password = jdbc_password(src)
    reader = spark.read.format("jdbc").option("url", src.uri)
    if sql is None:
        reader = reader.option("dbtable", _relation(src))
    else:
        reader = reader.option("query", sql)
    driver = src.options.get("driver") or DRIVERS.get(src.uri.split(":")[1].lower())
    if driver:
        reader = reader.option("driver", str(driver))
    if src.options.get("user"):
        reader = reader.option("user", str(src.options["user"]))
    if password is not None:
        reader = reader.option("password", password)
    if src.options.get("fetch_size"):
        reader = reader.option("fetchsize", str(int(src.options["fetch_size"])))
    try:
        return reader.load()
    except Exception as exc:  # noqa: BLE001 - Py4J/Spark errors: rephrased in one line
        reason = _reason(exc, password)
        if "ClassNotFound" in str(exc) or "No suitable driver" in str(exc):
            reason = f"no JDBC driver for this URL on Spark's classpath ({reason}): add its Maven coordinate to spark.packages"
        raise SourceError(f"source {src.name}: cannot read {redact(src.uri)}: {reason}") from None


def _collect(spark: SparkSession, src: Source, sql: str) -> list:
    try:
        return _load(spark, src, sql).collect()
    except SourceError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise SourceError(f"source {src.name}: query failed on {redact(src.uri)}: {_reason(exc, jdbc_password(src))}") from None


def watermark_kind(src: Source, schema: StructType) -> str:
    """`number` or `time`: the watermark column's type in the source's schema; SourceError when the
    column is missing, of another type, or a mapping names a column the relation lacks."""
    names = {header_name(f.name): f for f in schema.fields}
    relation = "the query" if src.options.get("query") else str(src.options["table"])
    columns = ", ".join(f.name for f in schema.fields)
    spec = src.options.get("events") or {}
    wanted = [(f"events.{section}.{key}", str(col)) for section in ("fields", "properties", "context")
              for key, col in (spec.get(section) or {}).items()]
    for setting, col in wanted:
        if header_name(col) not in names:
            raise SourceError(f"source {src.name}: {setting} names column {col!r}, which {relation} does not have "
                              f"(its columns: {columns})")
    wm = str(src.options["watermark"])
    field = names.get(header_name(wm.strip('"').split(".")[-1]))
    if field is None:
        raise SourceError(f"source {src.name}: watermark column {wm!r} is not a column of {relation} (its columns: {columns})")
    if isinstance(field.dataType, (IntegralType, DecimalType)):
        kind = "number"
    elif isinstance(field.dataType, (TimestampType, TimestampNTZType, DateType)):
        kind = "time"
    else:
        raise SourceError(f"source {src.name}: watermark column {wm!r} is {field.dataType.simpleString()}; "
                          "it must be an increasing number or timestamp")
    if src.options.get("lag") and kind != "time":
        raise SourceError(f"source {src.name}: lag (seconds) applies to a timestamp watermark; {wm!r} is a number")
    return kind


def last_bound(src: Source, manifest: list[dict]) -> str:
    """`lo` of the next batch: the `hi` of the source's latest committed batch over the same
    relation and watermark ("" when there is none: everything is new)."""
    prefix = origin(src, "", "").rsplit(":(", 1)[0] + ":("
    committed = [r for r in manifest if r["status"] == "committed" and r.get("source") == src.name
                 and str(r["file_path"]).startswith(prefix)]
    if not committed:
        return ""
    latest = max(committed, key=lambda r: r["batch_id"])
    return parse_origin(latest["file_path"])["hi"]


def _range(wm: str, lo: str, hi: str | None) -> str:
    cond = [f"{wm} IS NOT NULL"] + ([f"{wm} > {_quote(lo)}"] if lo else []) + ([f"{wm} <= {hi}"] if hi else [])
    return " AND ".join(cond)


def plan(spark: SparkSession, src: Source, manifest: list[dict]) -> list[tuple[str, str, int, dt.datetime, str, str]]:
    """The source's next batch as manifest rows (feed, origin, rows, planning time, name, kind):
    one row for the range (lo, hi], or none when nothing new. Checks the connection, the login, the
    relation, the watermark and the mapping's columns first (SourceError, nothing written)."""
    lag = float(src.options.get("lag") or 0)  # checked by lakehouse.sources.validate
    kind = watermark_kind(src, _load(spark, src).schema)
    wm, rel = str(src.options["watermark"]), _relation(src)
    lo = last_bound(src, manifest)
    top = f"MAX({wm})" + (f" - INTERVAL '{lag:g}' SECOND" if lag and kind == "time" else "")
    sql = (f"SELECT CAST(m.hi AS VARCHAR(64)) AS hi, (SELECT COUNT(*) FROM {rel} WHERE {_range(wm, lo, 'm.hi')}) AS n "
           f"FROM (SELECT {top} AS hi FROM {rel} WHERE {_range(wm, lo, None)}) m")
    row = _collect(spark, src, sql)[0]
    if row["hi"] is None or not row["n"]:
        return []
    planned_at = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    return [("events", origin(src, lo, row["hi"].strip()), int(row["n"]), planned_at, src.name, "jdbc")]


def read(spark: SparkSession, src: Source, origin_text: str, planned_at: dt.datetime) -> DataFrame:
    """The rows of a planned range as bronze text: `value` (the row as JSON), `source_file` (the
    origin) and `file_modified_at` (the planning time). Reads exactly (lo, hi] again on a replay."""
    parts = parse_origin(origin_text)
    if parts is None or parts["name"] != src.name:
        raise SourceError(f"source {src.name}: {origin_text!r} is not one of its ranges")
    wm = parts["watermark"]
    if wm != str(src.options["watermark"]):
        raise SourceError(f"source {src.name}: a planned batch reads by watermark {wm!r}, the config says "
                          f"{src.options['watermark']!r}; restore it until the batch is ingested")
    sql = f"SELECT * FROM {_relation(src)} WHERE {_range(wm, parts['lo'], _quote(parts['hi']))}"
    rows = _load(spark, src, sql)
    return rows.select(
        F.to_json(F.struct(*[F.col(f"`{c}`") for c in rows.columns]), JSON_OPTIONS).alias("value"),
        F.lit(origin_text).alias("source_file"),
        F.lit(planned_at).cast("timestamp").alias("file_modified_at"),
    )
