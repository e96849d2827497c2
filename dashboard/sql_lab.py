"""SQL Lab engine: one read-only SELECT over the gold tables and silver.events / silver.sessions
with DuckDB on Arrow.

The gold tables are loaded into DuckDB; the two silver tables are pyarrow datasets over their current
Delta version, limited to the columns dashboard.data.catalog offers (no personal data, no lineage),
scanned in place with DuckDB's projection and filter pushdown. silver.users, bronze and ops are refused by name, and a
withheld column (city, referrer, properties, …) gets a message saying why.

Two layers of protection. DuckDB's own parser decides what a query is: it must
parse (else the parser's message is shown), be exactly one statement of type
SELECT, and its syntax tree (json_serialize_sql) must call no function that
reaches files, the network, settings or runs SQL from strings, and name no file
as a table. The DuckDB connection itself has external access, extension
autoloading/autoinstall and replacement scans disabled, a memory limit (no
spilling to disk) and 2 threads, with its configuration locked. A timer thread
interrupts a query after 10 s. Results are cut at 10,000 rows or 4 MB, and
single values longer than 10,000 characters are shortened, each with a note.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pds
from .data import SQL_NOT_OFFERED, SQL_SILVER_COLUMNS, SQL_WITHHELD_COLUMNS
from .wording import count

MAX_ROWS = 10_000
MAX_BYTES = 4 * 2**20            # what SQL Lab sends to the browser (Arrow size of the rows shown)
MAX_CELL_CHARS = 10_000          # a longer text / blob value is shortened (and the note says so)
MAX_EXPORT_ROWS = 1_000_000
MAX_EXPORT_BYTES = 256 * 2**20   # the CSV download
MAX_EXPORT_CELL_CHARS = 1_000_000
TIMEOUT_S = 10.0
QUERY_MEMORY = 512 * 2**20       # DuckDB memory a query may use on top of the loaded gold tables
THREADS = 2

ENGINE_CONFIG = {
    "enable_external_access": False,
    "autoload_known_extensions": False,
    "autoinstall_known_extensions": False,
    "allow_community_extensions": False,
    "allow_unsigned_extensions": False,
    "python_enable_replacements": False,
    "threads": THREADS,
    "temp_directory": "",  # never spill to disk: a query over the memory limit fails instead
    "memory_limit": f"{QUERY_MEMORY // 2**20}MB",
}

# functions that reach files, the network, settings or run SQL from strings (whole function names)
FORBIDDEN_FUNCTION = re.compile(
    r"(read_\w+|\w+_scan|glob|sniff_csv|parquet_\w+|getenv|duckdb_secrets|duckdb_settings|duckdb_extensions|"
    r"current_setting|query|query_table|iceberg_\w+|delta_\w+|sqlite_\w+|postgres_\w+|mysql_\w+|http_\w+|"
    r"json_execute_serialized_sql|load_extension|which_secret)",
    re.IGNORECASE,
)


class QueryRefused(ValueError):
    """The query is not a single read-only SELECT (message says why)."""


class QuerySyntaxError(QueryRefused):
    """DuckDB's parser could not read the query (the message is the parser's own)."""


class QueryTimeout(RuntimeError):
    """The query ran longer than the limit and was interrupted."""


@dataclass
class QueryResult:
    """What SQL Lab shows: the rows kept, whether and why the result was cut, how long it took."""

    table: pa.Table
    truncated: bool           # rows were left out (more than max_rows, or past max_bytes)
    seconds: float
    cut_at_bytes: bool = False
    cut_values: int = 0       # values shortened to max_cell_chars

    @property
    def note(self) -> str | None:
        """One line saying how the result was cut (None when it is complete)."""
        parts = []
        n = self.table.num_rows
        if self.cut_at_bytes:
            parts.append(f"result cut at {n:,} row{'s' if n != 1 else ''} ({_mb(self.table.nbytes)} MB limit "
                         "reached)")
        elif self.truncated:
            parts.append(f"result cut at {count(n, 'row')}")
        if self.cut_values:
            parts.append(f"{self.cut_values:,} long value{'s' if self.cut_values != 1 else ''} shortened")
        return "; ".join(parts) if parts else None


def _mb(nbytes: int) -> str:
    return f"{max(nbytes, 1) / 2**20:,.1f}"


_parser_lock = threading.Lock()
_parser: duckdb.DuckDBPyConnection | None = None


def _parser_connection() -> duckdb.DuckDBPyConnection:
    """An empty locked-down DuckDB used only to parse queries (its parser, never the data)."""
    global _parser
    with _parser_lock:
        if _parser is None:
            con = duckdb.connect(":memory:", config=dict(ENGINE_CONFIG))
            con.execute("SET lock_configuration = true")
            _parser = con
        return _parser


def _parser_message(exc: Exception) -> str:
    """The parser's message on one line: 'Parser Error: syntax error at or near "SELEC" (line 1)'."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else "Parser Error"
    m = re.search(r"^LINE (\d+):", text, re.MULTILINE)
    return f"{first} (line {m.group(1)})" if m else first


def _walk(node, functions: list[str], tables: list[tuple[str, str]]) -> None:
    """Collect function names and base tables (schema, name) from DuckDB's JSON syntax tree."""
    if isinstance(node, dict):
        if node.get("class") == "FUNCTION" and isinstance(node.get("function_name"), str):
            functions.append(node["function_name"])
        if node.get("type") == "BASE_TABLE" and isinstance(node.get("table_name"), str):
            schema = node.get("schema_name")
            tables.append((schema if isinstance(schema, str) else "", node["table_name"]))
        for v in node.values():
            _walk(v, functions, tables)
    elif isinstance(node, list):
        for v in node:
            _walk(v, functions, tables)


def check_query(sql: str) -> str:
    """Refuse anything but one read-only SELECT query, decided by DuckDB's parser; return the query."""
    if not sql or not sql.strip():
        raise QueryRefused("Write a SELECT query first.")
    con = _parser_connection()
    with _parser_lock:
        try:
            statements = con.extract_statements(sql)
        except duckdb.Error as exc:
            raise QuerySyntaxError(_parser_message(exc)) from None
        if not statements:
            raise QueryRefused("Write a SELECT query first.")
        if len(statements) > 1:
            raise QueryRefused("Only one statement at a time: remove the extra ';'.")
        kind = statements[0].type
        if kind != duckdb.StatementType.SELECT:
            raise QueryRefused(f"Only read-only queries are allowed: this is a {kind.name} statement, "
                               "SQL Lab runs a single SELECT (or WITH … SELECT).")
        tree = json.loads(con.execute("SELECT json_serialize_sql(?)", [sql]).fetchone()[0])
    if tree.get("error"):
        raise QuerySyntaxError(str(tree.get("error_message") or "The query could not be parsed."))
    functions: list[str] = []
    tables: list[tuple[str, str]] = []
    _walk(tree.get("statements"), functions, tables)
    for name in functions:
        if FORBIDDEN_FUNCTION.fullmatch(name):
            raise QueryRefused(f"'{name}' is not allowed: SQL Lab reads the lake's tables only "
                               "(no files, network, settings or extensions).")
    for schema, name in tables:
        if re.search(r"[/\\:.]", name):
            raise QueryRefused(f"Reading files is not allowed ('{name}'): query gold.<table> or <table>, "
                               f"{OFFERED_SILVER}.")
        _check_offered(schema.lower(), name.lower())
    return sql.strip()


OFFERED_SILVER = " or ".join(f"silver.{name}" for name in SQL_SILVER_COLUMNS)


def _check_offered(schema: str, name: str) -> None:
    """Refuse a lake table SQL Lab does not offer (silver.users, bronze, ops), saying why."""
    if schema == "silver" and name not in SQL_SILVER_COLUMNS:
        why = SQL_NOT_OFFERED.get(f"silver.{name}", "not offered in SQL Lab")
        raise QueryRefused(f"silver.{name} is not offered in SQL Lab: {why}. Query gold.<table>, "
                           f"{OFFERED_SILVER}.")
    if schema in ("bronze", "ops"):
        raise QueryRefused(f"{schema}.{name} is not offered in SQL Lab (raw or internal data). Query "
                           f"gold.<table>, {OFFERED_SILVER}.")


def _withheld_column(exc: duckdb.Error) -> str | None:
    """The message for a binder error naming a column SQL Lab leaves out (None for any other error)."""
    m = re.search(r'(?:Referenced column|column named) "([^"]+)"', str(exc))
    if not m or m.group(1).lower() not in SQL_WITHHELD_COLUMNS:
        return None
    col = m.group(1)
    return (f"Column '{col}' is not offered in SQL Lab: {SQL_WITHHELD_COLUMNS[col.lower()]}. silver.events and "
            "silver.sessions leave out personal data and lineage (see the table list).")


_db_lock = threading.Lock()
_db: tuple[tuple, dict, duckdb.DuckDBPyConnection] | None = None


def _split(tables: dict) -> tuple[dict[str, pa.Table], dict[str, pds.Dataset]]:
    """The catalogue in two: gold tables to load ({name: Arrow table}) and silver tables to scan in
    place ({name: pyarrow dataset}). Keys are `gold.<name>` / `silver.<name>`; a bare name is gold."""
    gold, lazy = {}, {}
    for key, value in tables.items():
        layer, _, name = key.rpartition(".")
        if isinstance(value, pds.Dataset):
            if layer == "silver":
                lazy[name] = value
        elif layer in ("", "gold"):
            gold[name] = value
    return gold, lazy


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _scan_name(name: str) -> str:
    """The per-connection name a silver dataset is registered under (silver.<name> is a view of it)."""
    return f"_scan_silver_{name}"


def _database(tables: dict) -> duckdb.DuckDBPyConnection:
    """A locked-down in-memory DuckDB holding the gold tables as `gold.<name>` (plus views `<name>`)
    and views `silver.<name>` over the silver datasets.

    Built once per set of gold table versions (dashboard.data.lake hands out one Arrow object per version, so
    the objects' identities are the key; the entry keeps them alive so an id cannot be reused) and silver
    schemas. Silver is never loaded: each cursor registers the datasets of the current versions (see
    `connect`), so a new silver version needs no rebuild. Queries run on cursors of it, so they do not
    pay for loading and can run side by side.
    """
    global _db
    gold, lazy = _split(tables)
    key = (tuple(sorted((name, id(t)) for name, t in gold.items())),
           tuple(sorted((name, str(d.schema)) for name, d in lazy.items())))
    with _db_lock:
        if _db is not None and _db[0] == key:
            return _db[2]
        # loading is not limited; queries get QUERY_MEMORY on top of what the tables hold
        con = duckdb.connect(":memory:", config={k: v for k, v in ENGINE_CONFIG.items() if k != "memory_limit"})
        con.execute("CREATE SCHEMA gold")
        for name, table in gold.items():
            ident = _ident(name)
            con.register("_arrow_src", table)
            con.execute(f"CREATE TABLE gold.{ident} AS SELECT * FROM _arrow_src")
            con.unregister("_arrow_src")
            con.execute(f"CREATE VIEW main.{ident} AS SELECT * FROM gold.{ident}")
        con.execute("CREATE SCHEMA silver")
        for name, dataset in lazy.items():
            con.register(_scan_name(name), dataset)  # the view binds to each cursor's own registration
            con.execute(f"CREATE VIEW silver.{_ident(name)} AS SELECT * FROM {_ident(_scan_name(name))}")
            con.unregister(_scan_name(name))  # keeps no old version alive
        held = con.execute("SELECT coalesce(sum(memory_usage_bytes), 0) FROM duckdb_memory()").fetchone()[0]
        con.execute(f"SET memory_limit = '{(int(held) + QUERY_MEMORY) // 2**20}MB'")
        con.execute("SET GLOBAL TimeZone = 'UTC'")  # timestamps show as UTC whatever the server's zone
        con.execute("SET lock_configuration = true")
        old = _db
        _db = (key, dict(gold), con)
    if old is not None:
        old[2].close()
    return con


def connect(tables: dict) -> duckdb.DuckDBPyConnection:
    """A cursor on the locked-down database of the catalogue (close it when done): the gold tables, and
    the silver datasets of the versions in `tables` registered for this cursor only."""
    cur = _database(tables).cursor()
    for name, dataset in _split(tables)[1].items():
        cur.register(_scan_name(name), dataset)
    return cur


class QueryOutOfMemory(RuntimeError):
    """The query needed more memory than SQL Lab gives one query."""


class QueryError(RuntimeError):
    """DuckDB could not run the query (its message, on one line)."""


def _shorten(batch: pa.RecordBatch, max_chars: int) -> tuple[pa.RecordBatch, np.ndarray]:
    """Text and blob values longer than max_chars cut to it (text ends with '…'); values cut per row."""
    cols, cut = [], np.zeros(batch.num_rows, dtype=np.int64)
    for col in batch.columns:
        t = col.type
        text = pa.types.is_string(t) or pa.types.is_large_string(t)
        if not (text or pa.types.is_binary(t) or pa.types.is_large_binary(t)):
            cols.append(col)
            continue
        long = pc.fill_null(pc.greater((pc.utf8_length if text else pc.binary_length)(col), max_chars), False)
        mask = long.to_numpy(zero_copy_only=False)
        if mask.any():
            short = (pc.binary_join_element_wise(pc.utf8_slice_codeunits(col, 0, max_chars), "…", "") if text
                     else pc.binary_slice(col, 0, max_chars))
            col = pc.if_else(long, short, col)
            cut += mask
        cols.append(col)
    return pa.RecordBatch.from_arrays(cols, schema=batch.schema), cut


def _rows_within(batch: pa.RecordBatch, budget: int) -> int:
    """How many leading rows of batch fit in budget bytes (binary search on their Arrow size)."""
    lo, hi = 0, batch.num_rows
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if batch.slice(0, mid).nbytes <= budget:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _one_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def run_query(sql: str, tables: dict[str, pa.Table], max_rows: int = MAX_ROWS,
              timeout: float = TIMEOUT_S, max_bytes: int = MAX_BYTES,
              max_cell_chars: int = MAX_CELL_CHARS) -> QueryResult:
    """Run one checked query: at most max_rows rows and max_bytes of Arrow data come back, values
    longer than max_cell_chars shortened (the result says what was cut)."""
    query = check_query(sql)
    con = connect(tables)
    timer = threading.Timer(timeout, con.interrupt)
    t0 = time.perf_counter()
    batches, rows, size, cut_values, cut_bytes = [], 0, 0, 0, False
    try:
        timer.start()
        try:
            reader = con.sql(query).to_arrow_reader(2048)
            schema = reader.schema
            for batch in reader:
                if rows + batch.num_rows > max_rows + 1:  # one row past the limit says there is more
                    batch = batch.slice(0, max_rows + 1 - rows)
                batch, cut = _shorten(batch, max_cell_chars)
                if size + batch.nbytes > max_bytes:
                    keep = _rows_within(batch, max_bytes - size)
                    batch, cut, cut_bytes = batch.slice(0, keep), cut[:keep], True
                batches.append(batch)
                rows += batch.num_rows
                size += batch.nbytes
                cut_values += int(cut[:max(0, max_rows + batch.num_rows - rows)].sum())  # rows shown only
                if cut_bytes or rows > max_rows:
                    break
        except duckdb.InterruptException:
            raise QueryTimeout(f"The query was stopped after {timeout:g} s. Add filters or a LIMIT.") from None
        except duckdb.OutOfMemoryException:
            raise QueryOutOfMemory(f"The query needs more than the {QUERY_MEMORY // 2**20} MB of memory SQL Lab "
                                   "gives a query: add filters, a LIMIT or aggregate first.") from None
        except duckdb.PermissionException as exc:
            raise QueryRefused(f"Not allowed: {_one_line(exc)}") from None
        except duckdb.BinderException as exc:
            withheld = _withheld_column(exc)
            if withheld:
                raise QueryRefused(withheld) from None
            raise QueryError(_parser_message(exc)) from None
        except duckdb.Error as exc:
            raise QueryError(_parser_message(exc)) from None
    finally:
        timer.cancel()
        con.close()
    table = pa.Table.from_batches(batches, schema=schema)
    truncated = table.num_rows > max_rows or cut_bytes
    if table.num_rows > max_rows:
        table = table.slice(0, max_rows)
    return QueryResult(table=table, truncated=truncated, seconds=time.perf_counter() - t0,
                       cut_at_bytes=cut_bytes, cut_values=cut_values)


EXAMPLES: dict[str, str] = {
    "Daily active users, last 30 days": (
        "SELECT activity_date, dau, wau, mau, round(stickiness, 3) AS stickiness\n"
        "FROM gold.engagement_daily\nORDER BY activity_date DESC\nLIMIT 30"),
    "Active users by country (last 30 days)": (
        "SELECT country, sum(users) AS users, sum(active_users_30d) AS active_30d\n"
        "FROM gold.demographics\nGROUP BY country\nORDER BY active_30d DESC"),
    "Top 20 users by revenue": (
        "SELECT user_id, orders, round(revenue, 2) AS revenue, segment\n"
        "FROM users\nORDER BY revenue DESC\nLIMIT 20"),
    "Weekly distinct active users by device": (
        "SELECT date_trunc('week', activity_date) AS week, device, count(DISTINCT user_id) AS users\n"
        "FROM gold.user_activity_daily\nGROUP BY ALL\nORDER BY week, device"),
    "Events by name, last 7 days (silver.events)": (
        "SELECT event, count(*) AS events, count(DISTINCT user_id) AS users\n"
        "FROM silver.events\nWHERE ts >= (SELECT max(ts) FROM silver.events) - INTERVAL 7 DAY\n"
        "GROUP BY event\nORDER BY events DESC"),
    "Orders by currency sent, by segment (silver.events + gold.users)": (
        "SELECT upper(e.currency) AS currency, u.segment, count(*) AS orders, round(sum(e.amount), 2) AS amount_sent\n"
        "FROM silver.events e JOIN gold.users u USING (user_id)\n"
        "WHERE e.event = 'purchase' AND e.payment_status = 'success'\nGROUP BY ALL\nORDER BY orders DESC"),
    "Session length by segment (silver.sessions + gold.users)": (
        "SELECT u.segment, count(*) AS sessions, round(median(s.duration_s), 1) AS median_seconds,\n"
        "       round(avg(s.events), 1) AS events_per_session\n"
        "FROM silver.sessions s JOIN gold.users u USING (user_id)\nGROUP BY ALL\nORDER BY sessions DESC"),
}
