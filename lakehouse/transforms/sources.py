"""Silver: map each source's raw bronze records onto the events and profiles contract.

Pure DataFrame -> DataFrame functions. A mapped record is a contract JSON line (docs/spec/events.md)
in `value`, so silver's one parser validates, types and quarantines every source alike; the raw
record stays in `raw_value` for the quarantine, and `map_reason` holds a reason found while
mapping (a Segment call type that is not an event, a broken CSV record). A record is named by
its bronze line (`line_id`) and its position in that line (`part`: the calls of a Segment
`{"batch": [...]}` body; 0 otherwise).

Segment calls (https://segment.com/docs/connections/spec/): `track` is an event named by
`event` (renamed by the source's `renames`); `page` and `screen` are `page_view` events whose
`page` is the call's `name`, else `properties.path`; `identify` is a profile from `traits`;
`identify` with both ids and `alias` tie an anonymous (or previous) id to a user id
(`identity_ties`, resolved by `resolve_identities`). docs/sources.md has every rule.
"""

from __future__ import annotations

from typing import Callable

import pyspark.sql.functions as F
from pyspark.sql import Column, DataFrame, Window

from lakehouse.transforms.common import json_value

Transform = Callable[[DataFrame], DataFrame]

# Contract fields of an event and of a profile (docs/spec/events.md).
EVENT_FIELDS = ("event_id", "event", "ts", "user_id", "session_id")
CONTEXT_FIELDS = ("country", "city", "device", "os", "app_version", "referrer")
PROFILE_FIELDS = ("user_id", "registered_at", "gender", "birth_date", "age", "country", "city",
                  "signup_channel", "email", "updated_at")
PROFILE_TIMES = ("registered_at", "updated_at")

# The CSV kind's default column names for contract fields (case-insensitive), beyond the
# contract's own names: what common exports call them.
CSV_EVENT_ALIASES = {
    "event_id": ("event_id", "id", "eventid", "message_id"),
    "event": ("event", "event_type", "event_name", "type", "name"),
    "ts": ("ts", "timestamp", "event_time", "time", "occurred_at", "created_at"),
    "user_id": ("user_id", "userid", "customer_id", "distinct_id"),
    "session_id": ("session_id", "sessionid", "user_session"),
}
CSV_PROPERTY_ALIASES = {"item_id": ("item_id", "product_id"), "amount": ("amount", "revenue")}
CSV_PROFILE_ALIASES = {
    "user_id": ("user_id", "userid", "id", "customer_id"),
    "registered_at": ("registered_at", "registration_date", "signup_date", "created_at"),
    "birth_date": ("birth_date", "birthday", "date_of_birth"),
    "country": ("country", "location", "country_code"),
    "email": ("email", "e_mail", "email_address"),
    "updated_at": ("updated_at", "modified_at", "last_updated"),
}
# Event names common exports use for the contract's taxonomy (csv and segment defaults).
DEFAULT_RENAMES = {
    "product_view": "item_view", "view_item": "item_view", "Product Viewed": "item_view",
    "Product Added": "add_to_cart", "cart_add": "add_to_cart",
    "Checkout Started": "checkout_start", "Order Completed": "purchase", "order_completed": "purchase",
    "Signed Up": "signup", "Application Installed": "app_install", "Application Uninstalled": "app_uninstall",
    "Product Added to Wishlist": "wishlist_add",
}

BRONZE_COLUMNS = ("value", "value_bytes", "source_file", "file_modified_at", "line_id", "batch_id", "ingested_at")
MAPPED_COLUMNS = ("value", "raw_value", "value_bytes", "source_file", "file_modified_at", "line_id", "part",
                  "batch_id", "ingested_at", "map_reason")
IDENTITY_COLUMNS = ("anonymous_id", "user_id", "tied_at", "source", "source_file", "batch_id", "line_id", "part")
MAX_IDENTITY_HOPS = 16  # alias chains up to this long are followed (four pointer-jumping rounds)


def as_mapped(lines: DataFrame) -> DataFrame:
    """Landing lines (already in the contract's shape) in the mapped layout: unchanged text, part 0."""
    return lines.select(
        "value", F.col("value").alias("raw_value"), "value_bytes", "source_file", "file_modified_at", "line_id",
        F.lit(0).alias("part"), "batch_id", "ingested_at", F.lit(None).cast("string").alias("map_reason"),
    )


def _s(call: str, path: str) -> Column:
    """A string field of a JSON value (numbers as their text), null when absent, null or blank."""
    value = F.trim(F.expr(f"try_variant_get({call}, '{path}', 'string')"))
    return F.when(value != "", value)


def _json_object(pairs: list[tuple[str, Column]]) -> Column:
    """`{"k": "v", ...}` of the non-null values as JSON strings (keys in the given order)."""
    keys = F.array(*[F.lit(k) for k, _ in pairs])
    values = F.array(*[v.cast("string") for _, v in pairs])
    return F.to_json(F.map_filter(F.map_from_arrays(keys, values), lambda k, v: v.isNotNull()))


def _append_member(obj_text: Column, key: str, member_json: Column) -> Column:
    """JSON object text with one more member `"key": member_json` (itself JSON text); the text
    unchanged when the member is null."""
    body = F.regexp_replace(obj_text, r"\}\s*$", "")
    joined = (F.when(obj_text.rlike(r"^\{\s*\}$"), F.concat(F.lit(f'{{"{key}":'), member_json, F.lit("}")))
              .otherwise(F.concat(body, F.lit(f',"{key}":'), member_json, F.lit("}"))))
    return F.when(member_json.isNull(), obj_text).otherwise(joined)


def _json_string(text: Column) -> Column:
    """A string as a JSON string literal (quotes and escapes), null for null."""
    return F.regexp_replace(F.to_json(F.array(text)), r"^\[|\]$", "")


def _rename(name: Column, renames: dict) -> Column:
    """The event name after the source's renames (exact, case-sensitive names)."""
    if not renames:
        return name
    pairs = [x for k, v in renames.items() for x in (F.lit(k), F.lit(v))]
    return F.coalesce(F.element_at(F.create_map(*pairs), name), name)


# ---------------------------------------------------------------- Segment

def segment_calls(lines: DataFrame) -> DataFrame:
    """Bronze lines of a Segment source -> one row per call: the VARIANT `_call` and its `part`.

    A `{"batch": [...]}` body gives one row per call in it (parts 0, 1, ...); any other line is
    one call (part 0). A line that is not JSON keeps `_call` null, so that silver's parser
    quarantines it as it arrived (`not_json`); as there, text after the line's JSON value makes it
    not JSON (`common.json_value`).
    """
    batch = F.expr("try_variant_get(_line, '$.batch', 'array<variant>')")
    return (lines.transform(json_value("value", "_line", "_line_is_object"))
            .withColumn("_line", F.expr("variant_get(_line, '$[0]')"))
            .withColumn("_calls", F.when(batch.isNotNull() & (F.size(batch) > 0), batch).otherwise(F.array(F.col("_line"))))
            .select(*lines.columns, F.posexplode("_calls").alias("part", "_call")))


def _is_object(call: str = "_call") -> Column:
    return F.coalesce(F.expr(f"schema_of_variant({call})").startswith("OBJECT"), F.lit(False))


def _segment_type() -> Column:
    return F.lower(_s("_call", "$.type"))


def _segment_time() -> Column:
    """The call's time: `timestamp`, else `originalTimestamp`, else `receivedAt`."""
    return F.coalesce(_s("_call", "$.timestamp"), _s("_call", "$.originalTimestamp"), _s("_call", "$.receivedAt"))


def _segment_device() -> Column:
    """The contract's device from `context.device.type` (phones and tablets), else `web` for calls
    from a browser library (a page URL or a user agent in the context)."""
    kind = F.lower(_s("_call", "$.context.device.type"))
    browser = (_s("_call", "$.context.page.url").isNotNull() | _s("_call", "$.context.userAgent").isNotNull()
               | F.lower(_s("_call", "$.context.library.name")).isin("analytics.js", "analytics-next"))
    return (F.when(kind.isin("ios", "android", "mobile", "phone", "iphone"), F.lit("mobile"))
            .when(kind.isin("tablet", "ipad"), F.lit("tablet"))
            .when(kind.isNotNull(), kind)
            .when(browser, F.lit("web")))


def _segment_country() -> Column:
    """`context.location.country` when it is a two-letter code, else the region of `context.locale`
    (`en-US` -> `US`), else the location's country as sent."""
    loc = _s("_call", "$.context.location.country")
    region = F.upper(F.regexp_extract(F.coalesce(_s("_call", "$.context.locale"), F.lit("")),
                                      r"^[A-Za-z]{2,3}[-_]([A-Za-z]{2})$", 1))
    return F.when(loc.rlike("^[A-Za-z]{2}$"), loc).when(region != "", region).otherwise(loc)


def _segment_user() -> Column:
    """The id a call is sent under: `userId`, else `anonymousId` (resolved later by the identity map)."""
    return F.coalesce(_s("_call", "$.userId"), _s("_call", "$.anonymousId"))


def segment_events(renames: dict | None = None, page_event: str = "page_view") -> Transform:
    """Segment calls -> mapped event records, for `track`, `page` and `screen` calls.

    A line that is not a JSON object keeps its raw text (silver's parser names the reason); a call
    whose `type` is missing or not one of Segment's (`track`, `page`, `screen`, `identify`,
    `alias`, `group`) is quarantined as `unknown_call_type`. `identify`, `alias` and `group`
    calls are not events: the first two are read by `segment_profiles` and `identity_ties`,
    `group` is kept in bronze only.
    """
    names = {**DEFAULT_RENAMES, **(renames or {})}

    def _transform(calls: DataFrame) -> DataFrame:
        t = _segment_type()
        is_event = _is_object() & t.isin("track", "page", "screen")
        unknown = _is_object() & (t.isNull() | ~t.isin("track", "page", "screen", "identify", "alias", "group"))
        page = F.coalesce(_s("_call", "$.name"), _s("_call", "$.properties.path"), _s("_call", "$.properties.name"))
        name = F.when(t == "track", _rename(_s("_call", "$.event"), names)).otherwise(F.lit(page_event))
        context = _json_object([
            ("country", _segment_country()), ("city", _s("_call", "$.context.location.city")),
            ("device", _segment_device()), ("os", _s("_call", "$.context.os.name")),
            ("app_version", _s("_call", "$.context.app.version")),
            ("referrer", F.coalesce(_s("_call", "$.context.page.referrer"), _s("_call", "$.context.referrer.url"))),
        ])
        props = F.expr("to_json(try_variant_get(_call, '$.properties', 'variant'))")
        props = F.when(props.startswith("{"), props)
        has_page = F.expr("try_variant_get(_call, '$.properties.page', 'variant')").isNotNull()
        props = F.when(t.isin("page", "screen") & page.isNotNull() & ~has_page,
                       _append_member(F.coalesce(props, F.lit("{}")), "page", _json_string(page))).otherwise(props)
        line = _append_member(_append_member(_json_object([
            ("event_id", _s("_call", "$.messageId")), ("event", name), ("ts", _segment_time()),
            ("user_id", _segment_user()),
            ("session_id", F.coalesce(_s("_call", "$.context.sessionId"), _s("_call", "$.properties.session_id"))),
        ]), "context", context), "properties", props)
        kept = calls.filter(~_is_object() | is_event | unknown)
        return kept.select(
            F.when(is_event, line).otherwise(F.col("value")).alias("value"), F.col("value").alias("raw_value"),
            "value_bytes", "source_file", "file_modified_at", "line_id", "part", "batch_id", "ingested_at",
            F.when(unknown, F.lit("unknown_call_type")).alias("map_reason"),
        )

    return _transform


def segment_profiles() -> Transform:
    """Segment calls -> mapped profile records (contract profile JSON), one per `identify` call.

    `traits`: `email`, `createdAt` (registered_at), `gender`, `birthday` (its date part),
    `age`, `address.country`, `address.city`, `signup_channel`; `updated_at` is the call's time.
    Each identify is a whole profile: as for any profile, the latest `updated_at` wins (traits are
    not merged one by one).
    """

    def _transform(calls: DataFrame) -> DataFrame:
        birthday = _s("_call", "$.traits.birthday")
        line = _json_object([
            ("user_id", _segment_user()), ("registered_at", _s("_call", "$.traits.createdAt")),
            ("gender", _s("_call", "$.traits.gender")),
            ("birth_date", F.when(birthday.rlike(r"^\d{4}-\d{2}-\d{2}"), F.substring(birthday, 1, 10)).otherwise(birthday)),
            ("age", _s("_call", "$.traits.age")),
            ("country", F.coalesce(_s("_call", "$.traits.address.country"), _s("_call", "$.traits.country"))),
            ("city", F.coalesce(_s("_call", "$.traits.address.city"), _s("_call", "$.traits.city"))),
            ("signup_channel", _s("_call", "$.traits.signup_channel")),
            ("email", _s("_call", "$.traits.email")), ("updated_at", _segment_time()),
        ])
        identify = calls.filter(_is_object() & (_segment_type() == "identify"))
        return identify.select(
            line.alias("value"), F.col("value").alias("raw_value"), "value_bytes", "source_file", "file_modified_at",
            "line_id", "part", "batch_id", "ingested_at", F.lit(None).cast("string").alias("map_reason"),
        )

    return _transform


def identity_ties(source: str) -> Transform:
    """Segment calls -> identity ties (`IDENTITY_COLUMNS`): an `identify` sent with both ids ties its
    `anonymousId` to its `userId`; an `alias` ties its `previousId` to its `userId`."""

    def _transform(calls: DataFrame) -> DataFrame:
        t = _segment_type()
        other = F.when(t == "identify", _s("_call", "$.anonymousId")).when(t == "alias", _s("_call", "$.previousId"))
        user = _s("_call", "$.userId")
        return calls.filter(_is_object() & t.isin("identify", "alias")).select(
            other.alias("anonymous_id"), user.alias("user_id"),
            F.expr("try_cast(regexp_replace(" + "coalesce(try_variant_get(_call, '$.timestamp', 'string'), "
                   "try_variant_get(_call, '$.originalTimestamp', 'string'), try_variant_get(_call, '$.receivedAt', 'string'))"
                   ", 'Z$', '+00:00') AS TIMESTAMP)").alias("tied_at"),
            F.lit(source).alias("source"), "source_file", "batch_id", "line_id", "part",
        ).filter(F.col("anonymous_id").isNotNull() & F.col("user_id").isNotNull() & (F.col("anonymous_id") != F.col("user_id")))

    return _transform


def first_claims(ties: DataFrame) -> DataFrame:
    """One tie per anonymous id: the first (earliest `tied_at`, then arrival), as IDENTITY_COLUMNS.

    An id already claimed by one user is not claimed again by another (PostHog's and Amplitude's
    rule: an identified id is never moved to a second user).
    """
    order = Window.partitionBy("anonymous_id").orderBy(
        F.col("tied_at").asc_nulls_last(), "batch_id", "source_file", "line_id", "part")
    return ties.withColumn("_n", F.row_number().over(order)).filter(F.col("_n") == 1).select(*IDENTITY_COLUMNS)


def resolve_identities(claims: DataFrame) -> DataFrame:
    """First claims -> (anonymous_id, user_id): each id with the user it finally belongs to.

    Chains are followed (`a -> b`, `b -> c` gives `a -> c` and `b -> c`) up to MAX_IDENTITY_HOPS
    ties, by pointer jumping (four joins, no Spark job until read; each hop is checkpointed lazily,
    as its join reads the previous hop twice: without it the plan grew with every hop, to nine scans
    of the claims in 52 plan lines, all of it analysed and planned). An id in a cycle of ties, or
    at the start of a longer chain, keeps its own id (it is not merged): the resolved target must
    be an id that is not itself claimed.
    """
    edges = claims.select("anonymous_id", "user_id")
    hops = 1
    while hops < MAX_IDENTITY_HOPS:
        nxt = edges.select(F.col("anonymous_id").alias("_via"), F.col("user_id").alias("_to"))
        edges = (edges.join(nxt, edges["user_id"] == nxt["_via"], "left")
                 .select("anonymous_id", F.coalesce("_to", "user_id").alias("user_id"))
                 .localCheckpoint(eager=False))
        hops *= 2
    claimed = claims.select(F.col("anonymous_id").alias("user_id"))
    return edges.join(claimed, "user_id", "left_anti").select("anonymous_id", "user_id")


# ---------------------------------------------------------------- CSV

def _column(values: Column, names: tuple[str, ...]) -> Column:
    """The first of `names` (header names, lower case) the record has a non-empty value for."""
    picks = [F.element_at(values, n) for n in names]
    return F.coalesce(*[F.when(p != "", p) for p in picks]) if picks else F.lit(None).cast("string")


def _picked(values: Column, names: tuple[str, ...]) -> Column:
    """Which of `names` `_column` takes its value from (null when none)."""
    return F.coalesce(*[F.when(F.element_at(values, n) != "", F.lit(n)) for n in names]) if names else F.lit(None).cast("string")


def header_name(text: str) -> str:
    """A CSV header name as mappings compare it: trimmed, lower case, runs of spaces and hyphens
    as one underscore (`User ID` -> `user_id`, `e-mail` -> `e_mail`)."""
    import re

    return re.sub(r"[\s-]+", "_", str(text).strip().lower())


def _header_column(x: Column) -> Column:
    return F.regexp_replace(F.lower(F.trim(x)), r"[\s-]+", "_")


def csv_mapping(spec: dict | None, feed: str) -> dict:
    """A CSV feed's mapping as {contract field: header names to try}, with `properties` and
    `context` as {name: header names}: the source's own mapping, and the kind's defaults for what
    it does not list (docs/sources.md). Header names are compared as `header_name` spells them."""
    spec = spec or {}
    fields = {k: (header_name(v),) for k, v in (spec.get("fields") or {}).items()}
    defaults = CSV_EVENT_ALIASES if feed == "events" else CSV_PROFILE_ALIASES
    contract = EVENT_FIELDS if feed == "events" else PROFILE_FIELDS
    for name in contract:  # fields the source's own mapping does not list take the defaults
        fields.setdefault(name, defaults.get(name, (name,)))
    props = {k: (header_name(v),) for k, v in (spec.get("properties") or {}).items()}
    context = {k: (header_name(v),) for k, v in (spec.get("context") or {}).items()}
    if feed == "events" and not spec.get("context"):
        context = {c: (c,) for c in CONTEXT_FIELDS}
    if feed == "events" and not spec.get("properties"):
        props = {k: v for k, v in CSV_PROPERTY_ALIASES.items()}
    return {"fields": fields, "properties": props, "context": context}


def _csv_time(text: Column, spec: dict) -> Column:
    """A CSV timestamp as the contract's ISO text: with `ts_format` (a Spark datetime pattern) read
    as wall time in `timezone` (default UTC) and written in UTC; without it, the text as sent.
    Text the pattern does not read stays as sent (silver quarantines it as `bad_timestamp`)."""
    fmt = spec.get("ts_format")
    if not fmt:
        return text
    wall = F.try_to_timestamp(text, F.lit(str(fmt)))
    utc = F.to_utc_timestamp(wall, str(spec.get("timezone") or "UTC"))
    iso = F.date_format(utc, "yyyy-MM-dd'T'HH:mm:ss.SSSSSS")
    return F.when(wall.isNotNull(), F.concat(iso, F.lit("Z"))).otherwise(text)


def _contract_line(feed: str, spec: dict, source: str) -> Column:
    """The contract JSON line of a record whose columns are the map `_m` (column name, lower case ->
    text), as `csv_mapping` maps them; for events, columns the mapping does not use become
    `properties` under their own names, and a record without an event id gets a deterministic one
    from the source and its raw text (`value`). Empty values are absent."""
    mapping = csv_mapping(spec, feed)
    m = F.col("_m")
    if feed != "events":
        pairs = []
        for name in PROFILE_FIELDS:
            col = _column(m, mapping["fields"].get(name, ()))
            pairs.append((name, _csv_time(col, spec) if name in PROFILE_TIMES else col))
        return _json_object(pairs)
    renames = {**DEFAULT_RENAMES, **(spec.get("renames") or {})}
    # The columns a field takes its value from; every other column is a property of its own name.
    used = F.array(*[_picked(m, names) for names in (*mapping["fields"].values(), *mapping["properties"].values(),
                                                     *mapping["context"].values())])
    ts = _csv_time(_column(m, mapping["fields"].get("ts", ())), spec)
    explicit_id = _column(m, mapping["fields"].get("event_id", ()))
    props_named = F.map_from_entries(F.filter(F.array(*[
        F.struct(F.lit(k).alias("key"), _column(m, names).alias("value")) for k, names in mapping["properties"].items()
    ] or [F.struct(F.lit("").alias("key"), F.lit(None).cast("string").alias("value"))]), lambda e: e["value"].isNotNull()))
    rest = F.map_filter(m, lambda k, v: ~F.coalesce(F.array_contains(used, k), F.lit(False)) & (v != ""))
    props = F.to_json(F.map_concat(rest, props_named)) if mapping["properties"] else F.to_json(rest)
    return _append_member(_append_member(_json_object([
        ("event_id", F.coalesce(explicit_id, F.substring(F.sha2(F.concat_ws("|", F.lit(source), F.col("value")), 256), 1, 32))),
        ("event", _rename(_column(m, mapping["fields"].get("event", ())), renames)),
        ("ts", ts), ("user_id", _column(m, mapping["fields"].get("user_id", ()))),
        ("session_id", _column(m, mapping["fields"].get("session_id", ()))),
    ]), "context", _json_object([(c, _column(m, names)) for c, names in mapping["context"].items()])), "properties", props)


def _as_records(line: Column, reason: Column, lines: Column) -> list[Column]:
    """The mapped layout (MAPPED_COLUMNS and `_lines`) of records mapped to `line`; a record with a
    `reason` keeps its raw text for the quarantine."""
    return [F.when(reason.isNull(), line).otherwise(F.col("value")).alias("value"), F.col("value").alias("raw_value"),
            "value_bytes", "source_file", "file_modified_at", "line_id", F.lit(0).alias("part"), "batch_id",
            "ingested_at", reason.alias("map_reason"), lines.alias("_lines")]


def csv_contract(feed: str, spec: dict | None, source: str) -> Transform:
    """CSV records (`lakehouse.transforms.silver.csv_file_records`) -> mapped records of `feed`.

    Each file's first record is its header (names trimmed, lower case); each other record is the
    map of header name to trimmed field, mapped by `_contract_line`. A record with a different
    number of fields than the header is quarantined (`csv_field_count`), as is a broken record
    (its CSV reason).
    """
    line = _contract_line(feed, spec or {}, source)

    def _transform(records: DataFrame) -> DataFrame:
        first = records.groupBy("source_file").agg(F.min("line_id").alias("_head_id"))
        header = (records.join(first, "source_file").filter(F.col("line_id") == F.col("_head_id"))
                  .select("source_file", F.transform("_fields", _header_column).alias("_header")))
        rows = records.join(first, "source_file").filter(F.col("line_id") != F.col("_head_id")).join(header, "source_file")
        values = F.when(F.size("_fields") == F.size("_header"),
                        F.map_from_arrays("_header", F.transform("_fields", lambda x: F.trim(x))))
        reason = F.coalesce(F.col("_csv_reason"),
                            F.when(F.size("_fields") != F.size("_header"), F.lit("csv_field_count")))
        return rows.withColumn("_m", values).select(*_as_records(line, reason, F.col("_lines")))

    return _transform


def jdbc_contract(feed: str, spec: dict | None, source: str) -> Transform:
    """Bronze rows of a database source (`value`: the row as a JSON object) -> mapped records of
    `feed`, mapped as a CSV record whose header is the row's column names (`_contract_line`, the
    same default names and options); values are their JSON text (numbers as written, timestamps
    ISO-8601). Text that is not a JSON object is quarantined as silver's parser finds it."""
    line = _contract_line(feed, spec or {}, source)

    def _transform(rows: DataFrame) -> DataFrame:
        values = F.transform_keys(F.from_json("value", "map<string,string>"), lambda k, v: _header_column(k))
        values = F.map_filter(values, lambda k, v: v.isNotNull())
        values = F.transform_values(values, lambda k, v: F.trim(v))
        not_object = F.when(F.col("_m").isNull(), F.lit("not_json"))
        return rows.withColumn("_m", values).select(*_as_records(line, not_object, F.lit(1)))

    return _transform
