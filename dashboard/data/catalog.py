"""SQL Lab's catalogue: which lake tables and columns it offers, and which it withholds and why.

Every gold table is offered whole; of silver, only events and sessions without personal data or lineage
(docs/dashboard.md, "What SQL Lab can query"). The tables come from `lake` (this module opens none).
"""

from __future__ import annotations

from .lake import dataset, list_tables, read_arrow, table_details, table_version


# What SQL Lab offers besides every gold table: two silver tables, without personal data or lineage
# (docs/dashboard.md, "What SQL Lab can query"). user_id and session_id are the pseudonymous ids gold
# already shows; the typed property columns are offered, the raw `properties` JSON is not.
SQL_SILVER_COLUMNS: dict[str, tuple[str, ...]] = {
    "events": ("event_id", "event", "ts", "user_id", "session_id", "country", "device", "os", "app_version",
               "page", "item_id", "item_type", "category", "price", "quantity", "cart_value", "order_id",
               "amount", "currency", "payment_status", "course_id", "progress_pct", "quiz_id", "score",
               "max_score", "passed", "duration_s", "points", "reason", "reward", "channel"),
    "sessions": ("user_id", "session_id", "session_start", "session_end", "events", "duration_s", "is_derived"),
}


# Columns of those tables (and of silver.users) that are left out, and why (SQL Lab's refusal says it).
SQL_WITHHELD_COLUMNS: dict[str, str] = {
    "city": "a city with a country and a time narrows events down to a person (quasi-identifier)",
    "referrer": "a referring URL can carry e-mail addresses, tokens or search terms",
    "properties": "the raw properties JSON holds whatever a client sent; use the typed property columns",
    "source_file": "lineage (internal file paths)",
    "batch_id": "lineage",
    "ingested_at": "lineage",
    "email_hash": "personal data (silver.users is not offered)",
    "email": "personal data",
    "birth_date": "personal data (silver.users is not offered)",
    "registered_at": "silver.users is not offered",
}


# Lake tables SQL Lab does not offer, and why.
SQL_NOT_OFFERED: dict[str, str] = {
    "silver.users": "profiles with personal data (e-mail hash, birth date, city); gold.users has the profile "
                    "columns SQL Lab offers",
    "silver.quarantine": "rejected lines as they arrived, which may hold anything a client sent",
}


def sql_tables() -> dict[str, object]:
    """SQL Lab's catalogue, keyed `gold.<name>` / `silver.<name>`: every existing gold table as Arrow
    (loaded, cached per version) and silver.events / silver.sessions as lazy pyarrow datasets limited to
    the offered columns (a new Delta version, e.g. after `lakehouse forget`, gives a new dataset)."""
    out: dict[str, object] = {}
    for layer, name in list_tables():
        if layer == "gold":
            t = read_arrow(layer, name)
            if t is not None:
                out[f"gold.{name}"] = t
    for name in SQL_SILVER_COLUMNS:
        ds = dataset("silver", name, SQL_SILVER_COLUMNS[name])  # DuckDB pushes projection and filters into it
        if ds is not None:
            out[f"silver.{name}"] = ds
    return out


def sql_table_rows(qualified: str) -> int | None:
    """Rows of a SQL Lab table at its current version, from the Delta log (no data read)."""
    layer, _, name = qualified.partition(".")
    version = table_version(layer, name)
    if version is None:
        return None
    try:
        return table_details(layer, name, version)["rows"]
    except Exception:  # noqa: BLE001 - the count is a hint only
        return None
