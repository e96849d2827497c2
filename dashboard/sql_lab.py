"""SQL Lab engine: one read-only SELECT over the gold tables with DuckDB on Arrow.

Two layers of protection: the text is refused unless it is a single SELECT/WITH
statement without file, network, extension or settings access (checked outside
comments and string literals), and the DuckDB connection itself has external
access, extension autoloading/autoinstall and replacement scans disabled, with
its configuration locked. A timer thread interrupts a query after 10 s.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass

import duckdb
import pyarrow as pa

MAX_ROWS = 10_000
MAX_EXPORT_ROWS = 1_000_000
TIMEOUT_S = 10.0

ENGINE_CONFIG = {
    "enable_external_access": False,
    "autoload_known_extensions": False,
    "autoinstall_known_extensions": False,
    "allow_community_extensions": False,
    "allow_unsigned_extensions": False,
    "python_enable_replacements": False,
    "threads": 2,
}

# statements/keywords that have no business in a read-only query
FORBIDDEN_KEYWORDS = (
    "insert", "update", "delete", "merge", "upsert", "create", "drop", "alter", "truncate", "copy", "attach",
    "detach", "install", "load", "pragma", "export", "import", "set", "reset", "call", "checkpoint", "vacuum",
    "use", "begin", "commit", "rollback", "grant", "revoke", "secret",
)
# table functions / functions that reach files, the network, settings or run SQL from strings
FORBIDDEN_FUNCTION = re.compile(
    r"\b(read_\w+|\w+_scan|glob|sniff_csv|parquet_\w+|getenv|duckdb_secrets|duckdb_settings|duckdb_extensions|"
    r"current_setting|query|query_table|iceberg_\w+|delta_\w+|sqlite_\w+|postgres_\w+|mysql_\w+|http_\w+|"
    r"json_execute_serialized_sql|load_extension)\s*\(",
    re.IGNORECASE,
)
FORBIDDEN_WORD = re.compile(r"\b(" + "|".join(FORBIDDEN_KEYWORDS) + r")\b", re.IGNORECASE)
# a string literal used where a table goes (FROM 'file.csv') is a file read
LITERAL_TABLE = re.compile(r"\b(from|join)\s*\(?\s*''", re.IGNORECASE)
STARTS_OK = re.compile(r"^\s*\(*\s*(select|with)\b", re.IGNORECASE)


class QueryRefused(ValueError):
    """The query is not a single read-only SELECT (message says why)."""


class QueryTimeout(RuntimeError):
    """The query ran longer than the limit and was interrupted."""


@dataclass
class QueryResult:
    """What SQL Lab shows: at most max_rows rows, whether the result was cut, how long it took."""

    table: pa.Table
    truncated: bool
    seconds: float


def strip_sql(sql: str) -> str:
    """The SQL with comments removed and every string literal replaced by ''."""
    out, i, n = [], 0, len(sql)
    while i < n:
        c = sql[i]
        if sql.startswith("--", i):
            j = sql.find("\n", i)
            i = n if j < 0 else j
            out.append(" ")
        elif sql.startswith("/*", i):
            j = sql.find("*/", i + 2)
            i = n if j < 0 else j + 2
            out.append(" ")
        elif c == "'" or (c in "eE" and sql.startswith("'", i + 1)):
            i += 1 if c == "'" else 2
            while i < n:
                if sql[i] == "\\" and c in "eE":
                    i += 2
                    continue
                if sql[i] == "'":
                    if sql.startswith("''", i):
                        i += 2
                        continue
                    break
                i += 1
            i += 1
            out.append("''")
        elif c == "$" and (m := re.match(r"\$(\w*)\$", sql[i:])):
            tag = m.group(0)
            j = sql.find(tag, i + len(tag))
            i = n if j < 0 else j + len(tag)
            out.append("''")
        else:
            out.append(c)
            i += 1
    return "".join(out)


def check_query(sql: str) -> str:
    """Refuse anything but one read-only SELECT/WITH query; return it without a trailing ';'."""
    if not sql or not sql.strip():
        raise QueryRefused("Write a SELECT query first.")
    bare = strip_sql(sql)
    parts = [p for p in bare.split(";") if p.strip()]
    if len(parts) > 1:
        raise QueryRefused("Only one statement at a time: remove the extra ';'.")
    if not parts:
        raise QueryRefused("Write a SELECT query first.")
    if not STARTS_OK.match(parts[0]):
        raise QueryRefused("Only read-only queries are allowed: start with SELECT or WITH.")
    unquoted = bare.replace('"', "")  # "read_csv"(...) is read_csv(...)
    if m := FORBIDDEN_FUNCTION.search(unquoted):
        raise QueryRefused(f"'{m.group(1)}' is not allowed: SQL Lab reads the gold tables only "
                           "(no files, network, settings or extensions).")
    if m := FORBIDDEN_WORD.search(unquoted):
        raise QueryRefused(f"'{m.group(1).upper()}' is not allowed: SQL Lab runs a single read-only "
                           "SELECT/WITH query.")
    if LITERAL_TABLE.search(bare):
        raise QueryRefused("Reading files is not allowed: query gold.<table> or <table>.")
    return sql.strip()


_db_lock = threading.Lock()
_db: tuple[tuple, dict, duckdb.DuckDBPyConnection] | None = None


def _database(tables: dict[str, pa.Table]) -> duckdb.DuckDBPyConnection:
    """A locked-down in-memory DuckDB holding the gold tables as `gold.<name>` (plus views `<name>`).

    Built once per set of table versions (data.py hands out one Arrow object per version, so the
    objects' identities are the key; the entry keeps them alive so an id cannot be reused).
    Queries run on cursors of it, so they do not pay for loading and can run side by side.
    """
    global _db
    key = tuple(sorted((name, id(t)) for name, t in tables.items()))
    with _db_lock:
        if _db is not None and _db[0] == key:
            return _db[2]
        con = duckdb.connect(":memory:", config=dict(ENGINE_CONFIG))
        con.execute("CREATE SCHEMA gold")
        for name, table in tables.items():
            ident = '"' + name.replace('"', '""') + '"'
            con.register("_arrow_src", table)
            con.execute(f"CREATE TABLE gold.{ident} AS SELECT * FROM _arrow_src")
            con.unregister("_arrow_src")
            con.execute(f"CREATE VIEW main.{ident} AS SELECT * FROM gold.{ident}")
        con.execute("SET lock_configuration = true")
        old = _db
        _db = (key, dict(tables), con)
    if old is not None:
        old[2].close()
    return con


def connect(tables: dict[str, pa.Table]) -> duckdb.DuckDBPyConnection:
    """A cursor on the locked-down database of the gold tables (close it when done)."""
    return _database(tables).cursor()


def _statement_is_select(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryRefused(f"Syntax error: {exc}") from None
    if len(statements) != 1:
        raise QueryRefused("Only one statement at a time.")
    if statements[0].type != duckdb.StatementType.SELECT:
        raise QueryRefused("Only read-only SELECT queries are allowed.")


def run_query(sql: str, tables: dict[str, pa.Table], max_rows: int = MAX_ROWS,
              timeout: float = TIMEOUT_S) -> QueryResult:
    """Run one checked query; at most max_rows rows come back (truncated says whether more existed)."""
    query = check_query(sql)
    con = connect(tables)
    timer = threading.Timer(timeout, con.interrupt)
    t0 = time.perf_counter()
    try:
        _statement_is_select(con, query)
        timer.start()
        try:
            reader = con.sql(query).to_arrow_reader(min(max_rows + 1, 100_000))
            batches, rows = [], 0
            for batch in reader:
                batches.append(batch)
                rows += batch.num_rows
                if rows > max_rows:
                    break
            table = pa.Table.from_batches(batches, schema=reader.schema)
        except duckdb.InterruptException:
            raise QueryTimeout(f"The query was stopped after {timeout:g} s. Add filters or a LIMIT.") from None
        except duckdb.PermissionException as exc:
            raise QueryRefused(f"Not allowed: {exc}") from None
    finally:
        timer.cancel()
        con.close()
    truncated = table.num_rows > max_rows
    if truncated:
        table = table.slice(0, max_rows)
    return QueryResult(table=table, truncated=truncated, seconds=time.perf_counter() - t0)


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
}
