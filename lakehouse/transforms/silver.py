"""Silver: parse, validate, type and normalise raw lines; deduplicate; merge profiles; sessions.

Pure DataFrame -> DataFrame functions; parameterised ones return a function for `df.transform`.
Lines are parsed once into a VARIANT so that wrong JSON types can be told apart from missing fields.
"""

from __future__ import annotations

from typing import Callable

import pyspark.sql.functions as F
from pyspark.sql import Column, DataFrame, Window

from lakehouse.transforms.common import json_value

Transform = Callable[[DataFrame], DataFrame]

REQUIRED_EVENT_FIELDS = ("event_id", "event", "ts", "user_id")
# An ISO-8601 instant in extended format (events.md, Timestamps): date, `T` (or `t`, or a space),
# hours and minutes, optional seconds with an optional fraction (`.` or `,`, up to 9 digits), and an
# optional zone: `Z`/`z` or an offset `+hh:mm`, `+hhmm`, `+hh`. Ranges (months, days, hours, offsets
# up to 18:00) are checked by the cast of the canonical form built by `_parse_ts`.
ISO_TS = r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}([.,]\d{1,9})?)?([Zz]|[+-]\d{2}(:?\d{2})?)?$"
# The spelling nearly every producer sends (`2025-01-31T09:30:00.123Z`, `...+02:00`), which Spark's
# cast reads as it is: `_parse_ts` tries it first and rewrites only the other spellings.
CANONICAL_TS = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$"
POINTS_EVENTS = ("points_earned", "points_redeemed")
UNREADABLE_MARKER = "\u0000lakehouse:unreadable_file:"  # bronze's marker line for a damaged file
BOM = "\ufeff"

# (column, JSON path, Spark type) of typed fields taken from `properties` / `context`.
PROPERTY_FIELDS = (
    ("page", "$.properties.page", "string"), ("item_id", "$.properties.item_id", "string"),
    ("item_type", "$.properties.item_type", "string"), ("category", "$.properties.category", "string"),
    ("price", "$.properties.price", "double"), ("quantity", "$.properties.quantity", "int"),
    ("cart_value", "$.properties.cart_value", "double"), ("order_id", "$.properties.order_id", "string"),
    ("amount", "$.properties.amount", "double"), ("currency", "$.properties.currency", "string"),
    ("payment_status", "$.properties.payment_status", "string"), ("course_id", "$.properties.course_id", "string"),
    ("progress_pct", "$.properties.progress_pct", "double"), ("quiz_id", "$.properties.quiz_id", "string"),
    ("score", "$.properties.score", "double"), ("max_score", "$.properties.max_score", "double"),
    ("passed", "$.properties.passed", "boolean"), ("duration_s", "$.properties.duration_s", "double"),
    ("points", "$.properties.points", "long"), ("reason", "$.properties.reason", "string"),
    ("reward", "$.properties.reward", "string"), ("channel", "$.properties.channel", "string"),
)
NUMERIC_TYPES = ("double", "int", "long")
WHOLE_TYPES = ("int", "long")
# A number as JSON writes it, or as a string holding one ("19.99", " 7 ", "1e3"); not NaN, Infinity,
# hexadecimal or Java suffixes ("1d"), which Spark's own cast would read.
NUMBER_TEXT = r"^\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*$"
CONTEXT_FIELDS = ("country", "city", "device", "os", "app_version", "referrer")

SILVER_EVENT_COLUMNS = (
    ["event_id", "event", "ts", "user_id", "session_id"]
    + list(CONTEXT_FIELDS)
    + [name for name, _, _ in PROPERTY_FIELDS]
    + ["properties", "source_file", "batch_id", "ingested_at"]
)

PROFILE_FIELDS = ("user_id", "registered_at", "gender", "birth_date", "age", "country", "city",
                  "signup_channel", "email", "updated_at")

# silver.users as DDL (the profile columns, the e-mail hashed, and lineage): the schema of an empty table.
SILVER_USERS_SCHEMA = (
    "user_id string, registered_at timestamp, gender string, birth_date date, age int, country string, "
    "city string, signup_channel string, email_hash string, updated_at timestamp, source_file string, batch_id long"
)

GENDER_MAP = {
    "female": ("f", "female", "woman", "w"),
    "male": ("m", "male", "man"),
    "other": ("other", "non-binary", "nonbinary", "nb", "x", "diverse"),
}


# ---------------------------------------------------------------- small column helpers

def _in_line(path: str) -> str:
    """A JSON path into the line (`$.field`) as a path into `_v` (`$[0].field`, see `_parse_line`)."""
    return "$[0]" + path[1:]


def _get(path: str, type_: str = "string") -> Column:
    """A typed field of the parsed line, null when absent or not castable."""
    return F.expr(f"try_variant_get(_v, '{_in_line(path)}', '{type_}')")


def _get_struct(path: str, fields: list[tuple[str, str]]) -> Column:
    """Several typed fields of one object at once (each null when absent or not castable)."""
    struct = ", ".join(f"`{name}`: {type_}" for name, type_ in fields)
    return F.expr(f"try_variant_get(_v, '{_in_line(path)}', 'struct<{struct}>')")


def _json_type(path: str) -> Column:
    """The JSON type of a field ('STRING', 'BIGINT', 'OBJECT<…>', …), null when absent."""
    return F.expr(f"schema_of_variant(variant_get(_v, '{_in_line(path)}'))")


def _typed_property(name: str, type_: str, value: Column) -> Column:
    """A typed property column from its extracted value (numbers arrive as text, see `_number`)."""
    if type_ in NUMERIC_TYPES:
        return _number(value, type_)
    if name == "payment_status":
        return F.lower(_blank_to_null(value))
    return value


def _number(text: Column, type_: str) -> Column:
    """A number sent as a JSON number or a numeric string, as it will be stored; null unless the
    stored value is exactly what was sent (finite, and whole and in range for `int`/`long`)."""
    is_number = text.rlike(NUMBER_TEXT)
    if type_ in WHOLE_TYPES:
        exact = F.trim(text).try_cast("decimal(38,18)")
        stored = exact.try_cast(type_)
        return F.when(is_number & (stored.cast("decimal(38,18)") == exact), stored)
    value = F.trim(text).try_cast("double")
    return F.when(is_number & ~F.isnan(value) & (F.abs(value) < F.lit(float("inf"))), value)


def _number_reason(name: str, type_: str) -> Column:
    """Why a numeric property that was sent is not stored as sent: `wrong_type_<name>` (not a
    finite number, or too large for its column), `not_whole_<name>` (a fraction in a whole-number
    field); null when it is absent, JSON null, or stored exactly (on `parse_events`' columns)."""
    text, stored = F.col(f"_n_{name}"), F.col(name)
    reason = F.when(text.isNull() | stored.isNotNull(), F.lit(None).cast("string"))
    if type_ in WHOLE_TYPES:
        exact = F.trim(text).try_cast("decimal(38,18)")
        fits = exact.try_cast(type_).isNotNull()
        reason = reason.when(text.rlike(NUMBER_TEXT) & fits, F.lit(f"not_whole_{name}"))
    return reason.otherwise(F.lit(f"wrong_type_{name}"))


def _blank_to_null(col: Column) -> Column:
    """Trim a string; empty becomes null."""
    trimmed = F.trim(col)
    return F.when(trimmed == "", F.lit(None)).otherwise(trimmed)


def _parse_ts(text: Column) -> Column:
    """ISO-8601 text to a UTC timestamp (no offset means UTC); null when it does not parse.

    A spelling ISO_TS accepts is rewritten to `yyyy-MM-ddTHH:mm:ss[.f]±hh[[:]mm]` (seconds `:00`
    when absent, `.` for the fraction, `+00:00` for `Z` or no zone), which Spark's cast reads
    whatever the session's time zone; the cast refuses impossible dates, hours, minutes, seconds
    and offsets, and keeps a fraction's first six digits (microseconds, not rounded).
    """
    text = F.trim(text)
    return F.coalesce(F.when(text.rlike(CANONICAL_TS), text.try_cast("timestamp")), _parse_other_ts(text))


def _parse_other_ts(text: Column) -> Column:
    """`_parse_ts` for the spellings other than `CANONICAL_TS` (four rewrites, then the cast)."""
    canonical = F.regexp_replace(text, r"^(.{10})[Tt ](\d{2}:\d{2})(?!:)", "$1T$2:00")  # minute precision
    canonical = F.regexp_replace(canonical, r"^(.{10})[t ]", "$1T")
    canonical = F.regexp_replace(canonical, ",", ".")
    canonical = F.regexp_replace(canonical, r"^(.{10}T\d{2}:\d{2}:\d{2}(\.\d+)?)[Zz]?$", "$1+00:00")  # `Z`, `z`, no zone
    return F.when(text.rlike(ISO_TS), canonical.try_cast("timestamp"))


def with_raw_bytes(df: DataFrame) -> DataFrame:
    """Bronze rows always carry `value_bytes` (the original bytes of a line that was not UTF-8)."""
    if "value_bytes" in df.columns:
        return df
    return df.withColumn("value_bytes", F.when(~F.expr("is_valid_utf8(value)"), F.col("value").cast("binary")))


def _raw_checks(max_line_bytes: int) -> Column:
    """Reasons found on the raw text, before any parsing."""
    return (
        F.when(F.col("value").startswith(UNREADABLE_MARKER), F.lit("unreadable_file"))
        .when(F.greatest(F.octet_length("value"), F.coalesce(F.octet_length("value_bytes"), F.lit(0))) > max_line_bytes,
              F.lit("line_too_long"))
        .when(F.col("value_bytes").isNotNull(), F.lit("not_utf8"))
        .when(F.trim(F.regexp_replace("value", BOM, "")) == "", F.lit("empty_line"))
    )


def _parse_line(df: DataFrame, max_line_bytes: int, text_col: str = "value") -> DataFrame:
    """Add `_raw_reason`, `_v` (the line as the only element of a VARIANT array, read with `_in_line`
    paths; null unless the line is one JSON value: `common.json_value`) and `_is_object`."""
    return (with_raw_bytes(df).withColumn("_raw_reason", _raw_checks(max_line_bytes))
            .transform(json_value(text_col, "_v", "_is_object", parse_when=F.col("_raw_reason").isNull())))


def _field_reason(field: str) -> Column:
    """`missing_<field>` when absent/null/blank, `wrong_type_<field>` when not a JSON string."""
    json_type = _json_type(f"$.{field}")
    text = _get(f"$.{field}")
    return (
        F.when(json_type.isNull() | (json_type == "VOID"), F.lit(f"missing_{field}"))
        .when(json_type != "STRING", F.lit(f"wrong_type_{field}"))
        .when(F.trim(text) == "", F.lit(f"missing_{field}"))
    )


# ---------------------------------------------------------------- events

def parse_events(max_line_bytes: int = 1_048_576, max_future_skew_hours: int = 24) -> Transform:
    """Bronze event lines -> typed candidate rows with `_error` (the quarantine reason, null when valid).

    Built in stages (parse, then extract each field once, then judge) so that no JSON path is
    evaluated twice per line and each projection stays small enough for code generation.
    """

    def _transform(bronze: DataFrame) -> DataFrame:
        # Mapped records (lakehouse.transforms.sources) also carry their part and a mapping reason.
        mapped = [c for c in ("part", "map_reason") if c in bronze.columns]
        keep = ["value", "value_bytes", "source_file", "file_modified_at", "line_id", "batch_id", "ingested_at", *mapped]
        parsed = _parse_line(bronze, max_line_bytes)
        fields = parsed.select(
            *keep, "_raw_reason", "_v", "_is_object",
            *[_json_type(f"$.{f}").alias(f"_t_{f}") for f in REQUIRED_EVENT_FIELDS],
            _json_type("$.context").alias("_t_context"),
            # One VARIANT -> struct cast per object is several times cheaper than a path per field.
            _get_struct("$", [(f, "string") for f in (*REQUIRED_EVENT_FIELDS, "session_id")]).alias("_top"),
            _get_struct("$.context", [(c, "string") for c in CONTEXT_FIELDS]).alias("_ctx"),
            # Numbers are taken as text and typed by `_number`, so that what is stored is what was sent.
            _get_struct("$.properties", [(n, "string" if t in NUMERIC_TYPES else t) for n, _, t in PROPERTY_FIELDS]).alias("_props"),
            F.expr(f"to_json(variant_get(_v, '{_in_line('$.properties')}'))").alias("properties"),
        ).select(
            *keep, "_raw_reason", "_v", "_is_object", "_t_context", "properties",
            *[F.col(f"_t_{f}") for f in REQUIRED_EVENT_FIELDS],
            *[F.trim(F.col(f"_top.{f}")).alias(f"_s_{f}") for f in REQUIRED_EVENT_FIELDS],
            _blank_to_null(F.col("_top.session_id")).alias("session_id"),
            *[_blank_to_null(F.col(f"_ctx.{c}")).alias(f"_c_{c}") for c in CONTEXT_FIELDS],
            *[_typed_property(name, t, F.col(f"_props.{name}")).alias(name) for name, _, t in PROPERTY_FIELDS],
            *[F.col(f"_props.{name}").alias(f"_n_{name}") for name, _, t in PROPERTY_FIELDS if t in NUMERIC_TYPES],
        ).withColumn("ts", _parse_ts(F.col("_s_ts"))).withColumn("_t_properties", _json_text_type(F.col("properties")))
        reason = F.coalesce(
            F.col("map_reason") if mapped else F.lit(None).cast("string"),
            F.col("_raw_reason"),
            F.when(F.col("_v").isNull(), F.lit("not_json")),
            F.when(~F.col("_is_object"), F.lit("not_an_object")),
            *[_typed_field_reason(f) for f in REQUIRED_EVENT_FIELDS],
            _typed_object_reason("properties"),
            _typed_object_reason("context"),
            F.when(F.col("ts").isNull(), F.lit("bad_timestamp")),
            F.when(F.col("ts") > F.col("ingested_at") + F.expr(f"INTERVAL {int(max_future_skew_hours)} HOURS"), F.lit("future_timestamp")),
            *[_number_reason(name, t) for name, _, t in PROPERTY_FIELDS if t in NUMERIC_TYPES],
            # Judged on the values as stored (after the checks above, exactly the values sent).
            F.when(F.col("amount") < 0, F.lit("negative_amount")),
            F.when(F.col("_s_event").isin(*POINTS_EVENTS) & (F.col("points").isNull() | (F.col("points") <= 0)),
                   F.lit("non_positive_points")),
        )
        context = {
            "country": F.upper(F.col("_c_country")),
            "device": F.lower(F.col("_c_device")),
        }
        return fields.select(
            *keep,
            reason.alias("_error"),
            *[F.col(f"_s_{f}").alias(f) for f in ("event_id", "event")],
            "ts",
            F.col("_s_user_id").alias("user_id"),
            "session_id",
            *[context.get(c, F.col(f"_c_{c}")).alias(c) for c in CONTEXT_FIELDS],
            *[name for name, _, _ in PROPERTY_FIELDS],
            "properties",
        )

    return _transform


def _json_text_type(json_text: Column) -> Column:
    """The JSON type of a value from its JSON text, in `schema_of_variant`'s words (OBJECT/VOID/…)."""
    return (
        F.when(json_text.isNull(), F.lit(None).cast("string"))
        .when(json_text == "null", F.lit("VOID"))
        .when(json_text.startswith("{"), F.lit("OBJECT"))
        .otherwise(F.lit("OTHER"))
    )


def _typed_field_reason(field: str) -> Column:
    """Like `_field_reason`, on the `_t_<field>` / `_s_<field>` columns of `parse_events`."""
    json_type, text = F.col(f"_t_{field}"), F.col(f"_s_{field}")
    return (
        F.when(json_type.isNull() | (json_type == "VOID"), F.lit(f"missing_{field}"))
        .when(json_type != "STRING", F.lit(f"wrong_type_{field}"))
        .when(text == "", F.lit(f"missing_{field}"))
    )


def _typed_object_reason(field: str) -> Column:
    """Like `_object_reason`, on the `_t_<field>` column of `parse_events`."""
    json_type = F.col(f"_t_{field}")
    return F.when(json_type.isNotNull() & (json_type != "VOID") & ~json_type.startswith("OBJECT"), F.lit(f"wrong_type_{field}"))


def valid_events(parsed: DataFrame) -> DataFrame:
    """Rows without a reason, in the silver.events column order (plus the ordering keys)."""
    return parsed.filter(F.col("_error").isNull()).select(*SILVER_EVENT_COLUMNS, "file_modified_at", "line_id",
                                                          *[c for c in ("part",) if c in parsed.columns])


def quarantined(parsed: DataFrame, feed: str) -> DataFrame:
    """Rows with a reason, as silver.quarantine rows (the line exactly as it arrived)."""
    return parsed.filter(F.col("_error").isNotNull()).select(
        F.lit(feed).alias("feed"), F.col("_error").alias("reason"), "value", "source_file", "batch_id", "ingested_at",
        "value_bytes",
    )


def with_raw_lines(parsed: DataFrame, bronze: DataFrame) -> DataFrame:
    """Quarantine candidates of `parsed` with their raw `value`/`value_bytes` taken back from bronze
    (or from the mapped records, by line and part)."""
    keys = ["batch_id", "line_id", *[c for c in ("part",) if c in parsed.columns and c in bronze.columns]]
    bad = parsed.filter(F.col("_error").isNotNull()).select(*keys, "_error")
    return bronze.join(F.broadcast(bad), keys)


def first_copy_per_event_id(events: DataFrame) -> DataFrame:
    """Keep the first-arrived copy of each event_id within one batch (file time, file, line).

    Only the narrow ordering keys are shuffled to find the later copies (few), which are then
    dropped with a broadcast anti-join, so the wide event rows are never shuffled.
    """
    line = ["batch_id", "line_id", *[c for c in ("part",) if c in events.columns]]  # part: a call of a Segment batch
    keys = events.select("event_id", "file_modified_at", "source_file", *line)
    order = Window.partitionBy("event_id").orderBy("batch_id", "file_modified_at", "source_file", *line[1:])
    later = keys.withColumn("_copy", F.row_number().over(order)).filter(F.col("_copy") > 1).select(*line)
    return events.join(F.broadcast(later), line, "left_anti").drop("file_modified_at", *line[1:])


def drop_known_event_ids(known_ids: DataFrame) -> Transform:
    """Drop events whose id is already in silver (duplicates across batches).

    The batch's ids are broadcast against silver's id column, so only the (few) ids silver
    already holds come back, and the batch itself is not shuffled.
    """

    def _transform(events: DataFrame) -> DataFrame:
        batch_ids = events.select("event_id").distinct()
        known = known_ids.select("event_id").join(F.broadcast(batch_ids), "event_id", "left_semi").distinct()
        return events.join(F.broadcast(known), "event_id", "left_anti")

    return _transform


# ---------------------------------------------------------------- profiles

def normalise_gender(col: Column) -> Column:
    """Free-text gender -> female / male / other / unknown (case-insensitive)."""
    g = F.lower(F.trim(col))
    out = F.when(g.isin(*GENDER_MAP["female"]), F.lit("female"))
    out = out.when(g.isin(*GENDER_MAP["male"]), F.lit("male"))
    out = out.when(g.isin(*GENDER_MAP["other"]), F.lit("other"))
    return out.otherwise(F.lit("unknown"))


def csv_records(lines: list[str]) -> list[tuple[int, int, list[str] | None, str | None]]:
    """One CSV file's lines (in file order, line ends removed) -> its RFC 4180 records.

    Each record is `(index of its first line, number of lines, fields, reason)`: a quoted field may
    hold commas, doubled quotes (one quote) and line breaks (kept as `\\n`), so a record may span
    several lines. Spaces around a quoted field are allowed. A record that is still broken has
    fields None and a reason: `csv_bad_quote` (a quote inside an unquoted field, or text after a
    closing quote; the record ends with its line) or `csv_unclosed_quote` (a quote still open at
    the end of the file: the record runs to the end of the file). A byte-order mark starting the
    file is ignored.
    """
    out: list[tuple[int, int, list[str] | None, str | None]] = []
    i, n = 0, len(lines)
    while i < n:
        first, fields, field, state, reason = i, [], [], "start", None
        while True:
            line = lines[i].removeprefix(BOM) if i == 0 else lines[i]
            i += 1
            if i - 1 == first and '"' not in line:  # the common case: a one-line record without quotes
                fields = line.split(",")
                break
            for ch in line:
                if state == "quoted":
                    if ch == '"':
                        state = "quote"  # closes the field, unless another quote follows
                    else:
                        field.append(ch)
                elif state in ("quote", "closed"):
                    if ch == '"' and state == "quote":
                        field.append('"')
                        state = "quoted"
                    elif ch == ",":
                        fields.append("".join(field))
                        field, state = [], "start"
                    elif ch in " \t":
                        state = "closed"
                    else:
                        reason = "csv_bad_quote"
                        break
                elif ch == ",":
                    fields.append("".join(field))
                    field, state = [], "start"
                elif ch == '"':
                    if state != "start":
                        reason = "csv_bad_quote"
                        break
                    field, state = [], "quoted"  # spaces before the opening quote are dropped
                else:
                    field.append(ch)
                    if ch not in " \t":
                        state = "plain"
            if state == "quoted" and reason is None:
                if i < n:
                    field.append("\n")  # a line break inside a quoted field
                    continue
                reason = "csv_unclosed_quote"
            fields.append("".join(field))
            break
        out.append((first, i - first, None if reason else fields, reason))
    return out


CSV_RECORD_SCHEMA = (
    "value string, value_bytes binary, source_file string, file_modified_at timestamp, line_id long, "
    "batch_id long, ingested_at timestamp, _lines int, _fields array<string>, _csv_reason string"
)


def _file_records(lines):
    """pandas: the lines of one CSV file -> one row per record (see `csv_records`).

    A record keeps its lines verbatim, joined by `\\n` (in `value_bytes` too when one of them was
    not UTF-8), with the first line's id, so it is stored or quarantined whole.
    """
    import pandas as pd

    lines = lines.sort_values("line_id", kind="stable").reset_index(drop=True)
    values = lines["value"].tolist()
    raw = lines["value_bytes"].tolist()
    rows = []
    for first, count, fields, reason in csv_records(values):
        part = range(first, first + count)
        text = "\n".join(values[k] for k in part)
        data = None
        if any(raw[k] is not None for k in part):
            data = b"\n".join(bytes(raw[k]) if raw[k] is not None else values[k].encode() for k in part)
        head = lines.iloc[first]
        rows.append((text, data, head["source_file"], head["file_modified_at"], int(head["line_id"]),
                     int(head["batch_id"]), head["ingested_at"], count, fields, reason))
    return pd.DataFrame(rows, columns=[c.split()[0] for c in CSV_RECORD_SCHEMA.split(", ")])


def _file_record_ids(lines):
    """pandas: the lines of one CSV file -> each line's `record_id`, the line_id of its record's first line."""
    import pandas as pd

    lines = lines.sort_values("line_id", kind="stable").reset_index(drop=True)
    ids = lines["line_id"].tolist()
    record = [ids[first] for first, count, _, _ in csv_records(lines["value"].tolist()) for _ in range(count)]
    return pd.DataFrame({"batch_id": lines["batch_id"], "source_file": lines["source_file"],
                         "line_id": lines["line_id"], "record_id": record})


def csv_record_mates(lines: DataFrame, hit: Column) -> DataFrame:
    """Bronze CSV lines that share an RFC 4180 record with a line matching `hit` (the hits
    included), as (batch_id, line_id): a record may span lines, so erasing one line of it
    must erase all of them. Only the files holding a hit are read again."""
    is_csv = F.lower(F.col("source_file")).rlike(r"\.csv(\.gz)?$")
    hits = lines.filter(is_csv & hit).select("batch_id", "line_id")
    files = lines.filter(is_csv & hit).select("batch_id", "source_file").distinct()
    members = (
        lines.join(files, ["batch_id", "source_file"], "left_semi")
        .select("batch_id", "source_file", "line_id", "value")
        .groupBy("batch_id", "source_file")
        .applyInPandas(_file_record_ids, "batch_id long, source_file string, line_id long, record_id long")
    )
    records = members.join(hits, ["batch_id", "line_id"], "left_semi").select("batch_id", "record_id").distinct()
    return members.join(records, ["batch_id", "record_id"], "left_semi").select("batch_id", "line_id")


def csv_file_records(lines: DataFrame) -> DataFrame:
    """Bronze lines of CSV files -> one row per RFC 4180 record (CSV_RECORD_SCHEMA), fields trimmed.

    A file none of whose lines holds a quote is split in Spark: each line is a record and its
    fields are the text between commas (the byte-order mark dropped from the file's first line),
    exactly what `csv_records` gives such a file. Only files with a quote somewhere are read
    by `csv_records` in pandas, so a batch without quoted fields starts no Python worker (about 2 s
    of a profiles step; docs/performance.md "Frames of driver rows and quote-free CSV without a Python worker").
    """
    file = Window.partitionBy("source_file")
    marked = (lines.select("value", "value_bytes", "source_file", "file_modified_at", "line_id", "batch_id", "ingested_at")
              .withColumn("_quoted", F.max(F.col("value").contains('"')).over(file))
              .withColumn("_first", F.min("line_id").over(file)))
    text = F.when(F.col("line_id") == F.col("_first"), F.regexp_replace("value", f"^{BOM}", "")).otherwise(F.col("value"))
    plain = marked.filter(~F.col("_quoted")).select(
        "value", "value_bytes", "source_file", "file_modified_at", "line_id", "batch_id", "ingested_at",
        F.lit(1).alias("_lines"), F.split(text, ",", -1).alias("_fields"), F.lit(None).cast("string").alias("_csv_reason"))
    quoted = marked.filter(F.col("_quoted")).drop("_quoted", "_first").groupBy("source_file").applyInPandas(_file_records, CSV_RECORD_SCHEMA)
    return plain.unionByName(quoted).withColumn("_fields", F.transform("_fields", lambda x: F.trim(x)))


def _csv_as_json(df: DataFrame) -> DataFrame:
    """Profile lines -> one row per record with its JSON text; CSV header records are marked.

    A JSON line is a record. The lines of a CSV file are put back into RFC 4180 records in file
    order (bronze keeps one row per landed line, and a file's lines all arrive in one batch): a
    record that spans lines becomes one row, named by its first line, with `_lines` its number of
    lines. Each file's header is its first record starting with `user_id`; a record whose number of
    fields differs from the header's is broken (`csv_field_count`).
    """
    is_csv = F.lower(F.col("source_file")).rlike(r"\.csv(\.gz)?$") & ~F.col("value").startswith(UNREADABLE_MARKER)
    if "map_reason" in df.columns:  # mapped records (lakehouse.transforms.sources) are JSON already
        is_csv = F.lit(False)
    records = csv_file_records(df.filter(is_csv))
    is_header = F.coalesce(F.lower(F.col("_fields")[0]) == "user_id", F.lit(False))
    headers = (
        records.filter(is_header)
        .groupBy("source_file")
        .agg(F.min_by(F.transform("_fields", lambda x: F.lower(x)), "line_id").alias("_header"))
    )
    rows = (
        records.join(headers, "source_file", "left")
        .withColumn("_is_header", is_header)
        .withColumn(
            "_csv_reason",
            F.coalesce(
                F.col("_csv_reason"),
                F.when(F.col("_header").isNull(), F.lit("csv_without_header")),
                F.when(~F.col("_is_header") & (F.size("_fields") != F.size("_header")), F.lit("csv_field_count")),
            ),
        )
        .withColumn(
            "_json",
            F.when(
                F.col("_csv_reason").isNull() & ~F.col("_is_header"),
                F.to_json(F.map_filter(F.map_from_arrays("_header", "_fields"), lambda k, v: v.isNotNull() & (v != ""))),
            ),
        )
        .drop("_fields", "_header")
    )
    mapped = "map_reason" in df.columns
    jsonl = (
        df.filter(~is_csv)
        .withColumn("_is_header", F.lit(False))
        .withColumn("_json", F.col("value"))
        .withColumn("value", F.col("raw_value") if mapped else F.col("value"))  # quarantine keeps the raw record
        .withColumn("_csv_reason", F.col("map_reason") if mapped else F.lit(None).cast("string"))
        .withColumn("_lines", F.col("_lines") if "_lines" in df.columns else F.lit(1))
    )
    if mapped:
        return jsonl.drop("map_reason", "raw_value", "part")
    return jsonl.unionByName(rows)


def parse_profiles(email_salt: str, max_line_bytes: int = 1_048_576) -> Transform:
    """Bronze profile lines (JSONL or CSV) -> typed profile rows with `_error`, header lines dropped.

    One row per record (a CSV record may span lines): `value` is the whole record and `_lines` the
    number of bronze lines it holds.
    """

    def _transform(bronze: DataFrame) -> DataFrame:
        df = _csv_as_json(with_raw_bytes(bronze)).filter(~F.col("_is_header"))
        df = (
            _parse_line(df, max_line_bytes, text_col="_json")
            .withColumn("_raw_reason", F.coalesce(F.col("_raw_reason"), F.col("_csv_reason")))
            .withColumn("_v", F.when(F.col("_raw_reason").isNull(), F.col("_v")))
            .withColumn("_ts_text", F.trim(_get("$.updated_at")))
        )
        updated_at = _parse_ts(F.col("_ts_text"))
        registered_text = _blank_to_null(_get("$.registered_at"))
        registered_at = _parse_ts(registered_text)
        email = _blank_to_null(_get("$.email"))
        reason = F.coalesce(
            F.col("_raw_reason"),
            F.when(F.col("_v").isNull(), F.lit("not_json")),
            F.when(~F.col("_is_object"), F.lit("not_an_object")),
            _field_reason("user_id"),
            F.when(F.col("_ts_text").isNotNull() & (F.col("_ts_text") != "") & updated_at.isNull(), F.lit("bad_timestamp")),
            F.when(registered_text.isNotNull() & registered_at.isNull(), F.lit("bad_timestamp")),
        )
        return df.select(
            "value", "value_bytes", "source_file", "file_modified_at", "line_id", "batch_id", "ingested_at", "_lines",
            reason.alias("_error"),
            F.trim(_get("$.user_id")).alias("user_id"),
            registered_at.alias("registered_at"),
            normalise_gender(_get("$.gender")).alias("gender"),
            F.trim(_get("$.birth_date")).try_cast("date").alias("birth_date"),
            _get("$.age", "int").alias("age"),
            F.upper(_blank_to_null(_get("$.country"))).alias("country"),
            _blank_to_null(_get("$.city")).alias("city"),
            _blank_to_null(_get("$.signup_channel")).alias("signup_channel"),
            F.when(email.isNotNull(), F.sha2(F.concat(F.lit(email_salt), F.lower(email)), 256)).alias("email_hash"),
            updated_at.alias("updated_at"),
        )

    return _transform


SILVER_USER_COLUMNS = ["user_id", "registered_at", "gender", "birth_date", "age", "country", "city",
                       "signup_channel", "email_hash", "updated_at", "source_file", "batch_id"]


def latest_profiles(current: DataFrame, incoming: DataFrame) -> DataFrame:
    """One profile per user: the latest `updated_at` wins whatever the arrival order.

    Ties (and missing `updated_at`, which sorts oldest) go to the later arrival.
    """
    inc = incoming.filter(F.col("_error").isNull()).select(*SILVER_USER_COLUMNS, "file_modified_at", "line_id")
    cur = current.select(*SILVER_USER_COLUMNS).withColumn("file_modified_at", F.lit(None).cast("timestamp")).withColumn("line_id", F.lit(None).cast("long"))
    order = Window.partitionBy("user_id").orderBy(
        F.col("updated_at").desc_nulls_last(), F.col("batch_id").desc(),
        F.col("file_modified_at").desc_nulls_last(), F.col("source_file").desc(), F.col("line_id").desc_nulls_last(),
    )
    return (
        cur.unionByName(inc)
        .withColumn("_rank", F.row_number().over(order))
        .filter(F.col("_rank") == 1)
        .select(*SILVER_USER_COLUMNS)
    )
