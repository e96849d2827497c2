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
    with pytest.raises(duckdb.Error):
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
