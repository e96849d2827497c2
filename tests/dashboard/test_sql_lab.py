"""SQL Lab: one read-only SELECT over the gold tables; no files, network, extensions or settings."""

from __future__ import annotations

import time

import duckdb
import pyarrow as pa
import pytest

from dashboard import data
from dashboard import sql_lab as engine


@pytest.fixture()
def tables(configured):
    return data.sql_tables()


def test_select_and_with_queries_run_over_gold_tables_with_and_without_schema(tables, configured):
    n = len(configured.frames["users"])
    assert engine.run_query("SELECT count(*) AS n FROM gold.users", tables).table.to_pylist() == [{"n": n}]
    assert engine.run_query("select count(*) as n from users;", tables).table.to_pylist() == [{"n": n}]
    r = engine.run_query("WITH d AS (SELECT * FROM gold.engagement_daily) SELECT max(dau) AS m FROM d", tables)
    assert r.table.column("m")[0].as_py() == configured.frames["engagement_daily"].dau.max()
    assert not r.truncated


@pytest.mark.parametrize("sql", [
    "INSERT INTO users VALUES (1)",
    "DROP TABLE gold.users",
    "DELETE FROM users",
    "UPDATE users SET age = 1",
    "CREATE TABLE x AS SELECT 1",
    "COPY (SELECT 1) TO '/tmp/x.csv'",
    "ATTACH '/tmp/x.duckdb' AS x",
    "INSTALL httpfs",
    "LOAD httpfs",
    "PRAGMA database_list",
    "SET enable_external_access = true",
    "SELECT 1; SELECT 2",
    "SELECT 1; DROP TABLE users",
    "EXPORT DATABASE '/tmp/x'",
    "CALL pragma_version()",
    "",
    "   -- only a comment",
])
def test_anything_but_a_single_select_is_refused(tables, sql):
    with pytest.raises(engine.QueryRefused):
        engine.run_query(sql, tables)


@pytest.mark.parametrize("sql", [
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_csv_auto('/etc/passwd')",
    "SELECT * FROM read_parquet('/tmp/*.parquet')",
    "SELECT * FROM read_json('http://example.com/x.json')",
    "SELECT * FROM '/etc/passwd'",
    "SELECT * FROM users JOIN 'x.csv' USING (user_id)",
    "SELECT * FROM glob('/*')",
    "SELECT * FROM parquet_scan('x.parquet')",
    "SELECT * FROM delta_scan('/work/lake/gold/users')",
    "SELECT getenv('HOME')",
    "SELECT current_setting('enable_external_access')",
    "SELECT * FROM query('SELECT 1')",
    "SELECT * FROM duckdb_secrets()",
    "SELECT * FROM \"read_text\"('/etc/passwd')",
])
def test_file_network_and_settings_access_is_refused_textually(tables, sql):
    with pytest.raises(engine.QueryRefused):
        engine.check_query(sql)


def test_forbidden_words_inside_strings_or_comments_do_not_refuse(tables):
    r = engine.run_query("SELECT 'drop table; read_csv(x)' AS s -- insert; copy\n FROM users LIMIT 1", tables)
    assert r.table.column("s")[0].as_py() == "drop table; read_csv(x)"
    r = engine.run_query("/* attach */ SELECT 'it''s' AS s", tables)
    assert r.table.column("s")[0].as_py() == "it's"


def test_the_engine_itself_blocks_files_extensions_and_settings(tables):
    con = engine.connect(tables)
    try:
        with pytest.raises(duckdb.Error):
            con.execute("SELECT * FROM read_csv('/etc/passwd')").fetchall()
        with pytest.raises(duckdb.Error):
            con.execute("COPY (SELECT 1) TO '/tmp/lakehouse-sql-lab-test.csv'")
        with pytest.raises(duckdb.Error):
            con.execute("LOAD httpfs")
        with pytest.raises(duckdb.Error):
            con.execute("SET enable_external_access = true")
        assert con.execute("SELECT current_setting('enable_external_access')").fetchone()[0] is False
        assert con.execute("SELECT current_setting('lock_configuration')").fetchone()[0] is True
    finally:
        con.close()


def test_python_objects_are_not_reachable_by_name(tables):
    hidden_table = pa.table({"x": [42]})  # noqa: F841 - a replacement scan would find it
    with pytest.raises(engine.QueryError, match="hidden_table does not exist"):
        engine.run_query("SELECT * FROM hidden_table", tables)


def test_results_are_cut_at_10000_rows_with_a_flag(tables):
    r = engine.run_query("SELECT * FROM range(25000) t(i)", tables)
    assert r.table.num_rows == engine.MAX_ROWS == 10_000 and r.truncated
    r = engine.run_query("SELECT * FROM range(10000) t(i)", tables)
    assert r.table.num_rows == 10_000 and not r.truncated


def test_a_query_running_past_the_time_limit_is_interrupted(tables):
    t0 = time.perf_counter()
    with pytest.raises(engine.QueryTimeout, match="stopped after 0.5 s"):
        engine.run_query("SELECT count(*) FROM range(100000000000) a, range(1000) b", tables, timeout=0.5)
    assert time.perf_counter() - t0 < 5
    assert engine.TIMEOUT_S == 10.0


# --------------------------------------------------------------------------- DuckDB's parser decides

@pytest.mark.parametrize("sql", [
    'SELECT segment AS "set", count(*) AS n FROM users GROUP BY 1',
    'SELECT 1 AS "update", 2 AS "delete", \'x\' AS "copy"',
    'WITH "set" AS (SELECT 1 AS "load") SELECT "load" FROM "set"',
    "FROM users LIMIT 1",
    "VALUES (1, 'a')",
    "SELECT 1 AS glob, 2 AS query",
])
def test_keywords_used_as_names_and_friendly_selects_run(tables, sql):
    assert engine.run_query(sql, tables).table.num_rows >= 1


def test_a_typo_gets_the_parsers_own_message_on_one_line(tables):
    with pytest.raises(engine.QuerySyntaxError) as e:
        engine.run_query("SELEC 1", tables)
    assert str(e.value) == 'Parser Error: syntax error at or near "SELEC" (line 1)'
    with pytest.raises(engine.QuerySyntaxError, match='at or near "DROP"'):
        engine.check_query("WITH x AS (SELECT 1) DROP TABLE users")


@pytest.mark.parametrize("sql, kind", [
    ("COPY (SELECT 1) TO '/tmp/x.csv'", "COPY"),
    ("SET threads = 8", "SET"),
    ("ATTACH '/tmp/x.duckdb' AS x", "ATTACH"),
    ("PRAGMA database_list", "PRAGMA"),
    ("EXPLAIN SELECT 1", "EXPLAIN"),
    ("INSERT INTO users VALUES (1)", "INSERT"),
])
def test_a_statement_that_is_not_a_select_is_named_in_the_refusal(sql, kind):
    with pytest.raises(engine.QueryRefused, match=f"this is a {kind} statement"):
        engine.check_query(sql)


def test_engine_errors_come_back_on_one_line(tables):
    with pytest.raises(engine.QueryError) as e:
        engine.run_query("SELECT no_such_column FROM users", tables)
    assert "no_such_column" in str(e.value) and "\n" not in str(e.value)


# --------------------------------------------------------------------------- result size and engine limits

def test_a_huge_value_is_shortened_with_a_note(tables):
    r = engine.run_query("SELECT 42 AS n, repeat('x', 20000000) AS big", tables)
    value = r.table.column("big")[0].as_py()
    assert value == "x" * engine.MAX_CELL_CHARS + "…"
    assert r.cut_values == 1 and not r.truncated
    assert r.note == "1 long value shortened"
    assert r.table.nbytes < engine.MAX_BYTES


def test_results_are_cut_at_the_byte_limit_with_a_note(tables):
    r = engine.run_query("SELECT i, repeat('x', 5000) AS s FROM range(5000) t(i)", tables)
    assert r.truncated and r.cut_at_bytes
    assert 0 < r.table.num_rows < 5000 and r.table.nbytes <= engine.MAX_BYTES
    assert r.table.column("i").to_pylist() == list(range(r.table.num_rows))  # the first rows, in order
    assert r.note.startswith(f"result cut at {r.table.num_rows:,} rows (") and "MB limit" in r.note
    # the CSV download has a larger budget
    big = engine.run_query("SELECT i, repeat('x', 5000) AS s FROM range(5000) t(i)", tables,
                           max_rows=engine.MAX_EXPORT_ROWS, max_bytes=engine.MAX_EXPORT_BYTES,
                           max_cell_chars=engine.MAX_EXPORT_CELL_CHARS)
    assert big.table.num_rows == 5000 and not big.truncated and big.note is None


def test_the_engine_has_memory_and_thread_limits_and_never_spills(tables):
    con = engine.connect(tables)
    try:
        limit, threads, temp = con.execute(
            "SELECT current_setting('memory_limit'), current_setting('threads'), "
            "current_setting('temp_directory')").fetchone()
    finally:
        con.close()
    assert threads == engine.THREADS == 2 and temp == ""
    value, unit = limit.split()
    mib = float(value) * {"KiB": 1 / 1024, "MiB": 1, "GiB": 1024}[unit]
    assert engine.QUERY_MEMORY / 2**20 * 0.9 <= mib <= engine.QUERY_MEMORY / 2**20 + 64  # tables are small here
    with pytest.raises(engine.QueryOutOfMemory, match="more than the 512 MB"):
        engine.run_query("SELECT count(*) FROM (SELECT i, repeat('x', 1000) AS s FROM range(1500000) t(i) "
                         "ORDER BY s DESC, i)", tables)
    assert engine.run_query("SELECT 1 AS ok", tables).table.num_rows == 1  # the next query runs normally
