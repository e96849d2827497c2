"""`lakehouse serve-sql`: the read-only SQL endpoint for BI tools (HiveServer2 protocol).

The `bi` tests start the real server (`lakehouse serve-sql`, a subprocess) on a lake built by the
pipeline and query it as BI tools do: PyHive's DB-API client and the SQLAlchemy `hive://` dialect
that Superset uses. They take minutes (a Spark JVM of its own per server), so `make test` leaves them
out and `make test-bi` runs them. The bad-input tests start no server and run in the fast suite.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from deltalake import DeltaTable

from lakehouse import pipeline
from lakehouse.generator import generate
from lakehouse.serve import READY

ROOT = Path(__file__).resolve().parent.parent
LAKEHOUSE = [sys.executable, "-m", "lakehouse.cli"]
USER, PASSWORD = "analyst", "correct horse battery"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def lake_files(lake: Path) -> dict[str, tuple[int, int]]:
    """Every file under the lake with its size and modification time (the lock file aside)."""
    return {str(p.relative_to(lake)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in lake.rglob("*") if p.is_file() and p.name != "_lakehouse.lock"}


def gold_sum_dau(lake: Path) -> int:
    return int(DeltaTable(str(lake / "gold" / "engagement_daily")).to_pandas()["dau"].sum())


class Server:
    """`lakehouse serve-sql` in a subprocess: started, waited for, always stopped."""

    def __init__(self, lake: Path, port: int, extra: list[str] = ()):
        self.port = port
        self.lines: list[str] = []
        self.ready = threading.Event()
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen([*LAKEHOUSE, "serve-sql", "--lake", str(lake), "--port", str(port), *extra],
                                     cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            if line.startswith("read-only:"):  # the last line of the banner
                self.ready.set()

    def wait(self, timeout: float = 900) -> "Server":
        deadline = time.monotonic() + timeout
        while not self.ready.is_set() and self.proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
        assert self.ready.is_set(), "server did not start:\n" + "\n".join(self.lines[-20:])
        return self

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)
        return self.proc.returncode


@pytest.fixture(scope="module")
def bi_lake(spark, cfg, tmp_path_factory):
    """A lake built from 8 of 10 generated days; the last two are kept for a second run."""
    root = tmp_path_factory.mktemp("bi")
    generate(str(root / "generated"), users=60, days=10, seed=5)
    landing = root / "landing"
    held_back = sorted((root / "generated" / "events").glob("date=*"))[-2:]
    for src in (root / "generated").rglob("*"):
        if src.is_file() and not any(d in src.parents for d in held_back):
            target = landing / src.relative_to(root / "generated")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(src.read_bytes())
    pipeline.run(spark, cfg, str(landing), str(root / "lake"), progress=lambda m: None)
    return root, held_back


@pytest.fixture(scope="module")
def users_file(tmp_path_factory):
    from lakehouse.passwords import set_user

    path = tmp_path_factory.mktemp("secrets") / "sql-users"
    set_user(str(path), USER, PASSWORD)
    return path


@pytest.fixture(scope="module")
def server(bi_lake, users_file):
    """The endpoint over the lake, with a users file: a user name and password are required."""
    root, _ = bi_lake
    lake_at_start = lake_files(root / "lake")
    srv = Server(root / "lake", free_port(), ["--users-file", str(users_file)])
    srv.lake_at_start = lake_at_start
    try:
        yield srv.wait()
    finally:
        srv.stop()


def connect(server, password=PASSWORD, database="default"):
    from pyhive import hive

    return hive.connect("127.0.0.1", server.port, username=USER, password=password, auth="CUSTOM", database=database)


def query(conn, sql):
    cur = conn.cursor()
    cur.execute(sql)
    return cur.fetchall()


@pytest.mark.bi
def test_sum_of_dau_over_the_hiveserver2_protocol_equals_gold(server, bi_lake):
    root, _ = bi_lake
    with connect(server) as conn:
        assert query(conn, "SELECT sum(dau) FROM gold.engagement_daily") == [(gold_sum_dau(root / "lake"),)]
        assert {r[0] for r in query(conn, "SHOW SCHEMAS")} >= {"bronze", "silver", "gold", "ops"}
        assert ("gold", "engagement_daily", False) in query(conn, "SHOW TABLES IN gold")
        assert ("dau", "bigint", None) in [tuple(r) for r in query(conn, "DESCRIBE gold.engagement_daily")]
    assert any("user name and password required" in line for line in server.lines), server.lines


@pytest.mark.bi
def test_superset_sqlalchemy_dialect_lists_schemas_and_columns_and_runs_the_query(server, bi_lake):
    from sqlalchemy import create_engine, inspect, text

    root, _ = bi_lake
    engine = create_engine(f"hive://{USER}:{PASSWORD.replace(' ', '%20')}@127.0.0.1:{server.port}/gold?auth=CUSTOM")
    try:
        inspector = inspect(engine)
        assert {"bronze", "silver", "gold", "ops"} <= set(inspector.get_schema_names())
        assert "dau" in [c["name"] for c in inspector.get_columns("engagement_daily", schema="gold")]
        with engine.connect() as conn:
            assert conn.execute(text("SELECT sum(dau) FROM gold.engagement_daily")).scalar() == gold_sum_dau(root / "lake")
    finally:
        engine.dispose()


@pytest.mark.bi
def test_the_sparksql_dialect_lists_the_gold_tables_for_superset(server, bi_lake):
    """contrib/sqlalchemy-sparksql: PyHive's hive:// lists the schema name as the only table (Spark's
    SHOW TABLES puts the namespace first); sparksql:// lists the tables, so Superset can pick them."""
    from sqlalchemy import create_engine, inspect
    from sqlalchemy.dialects import registry

    from lakehouse.tables import GOLD

    sys.path.insert(0, str(ROOT / "contrib" / "sqlalchemy-sparksql"))
    registry.register("sparksql", "lakehouse_sparksql", "SparkSQLDialect")  # what its entry point does once installed
    auth = f"{USER}:{PASSWORD.replace(' ', '%20')}@127.0.0.1:{server.port}/gold?auth=CUSTOM"
    hive, spark_sql = create_engine(f"hive://{auth}"), create_engine(f"sparksql://{auth}")
    try:
        assert inspect(hive).get_table_names(schema="gold") != sorted(GOLD)  # the PyHive problem it fixes
        assert sorted(inspect(spark_sql).get_table_names(schema="gold")) == sorted(GOLD)
        assert "dau" in [c["name"] for c in inspect(spark_sql).get_columns("engagement_daily", schema="gold")]
    finally:
        hive.dispose()
        spark_sql.dispose()


@pytest.mark.bi
def test_a_client_session_closes_without_recreating_the_metastore(server):
    """Closing a session reaches Hive's metastore (SessionState.close -> Hive.getMSC). With Spark's
    default `jdbc:derby:memory:;databaseName=...` Derby failed to create it (XBM0J "Directory ...
    already exists") and Hive retried 10 times 2 s apart, logging each try: ~20 s per close."""
    for _ in range(2):  # a first close (the metastore is created then) and a later one
        conn = connect(server)
        assert query(conn, "SELECT 1") == [(1,)]
        before = len(server.lines)
        conn.close()  # returns once the server has closed the session
        with connect(server) as probe:  # and the server still serves
            assert query(probe, "SELECT 2") == [(2,)]
        time.sleep(1)  # the server's log reaches us through two pipes
        logged = "\n".join(server.lines[before:])
        for sign in ("XBM0J", "Failed to create database", "RetryingHMSHandler", "ERROR"):
            assert sign not in logged, logged[:2000]


@pytest.mark.bi
def test_wrong_or_missing_password_is_refused(server):
    from pyhive import hive

    with pytest.raises(Exception):
        connect(server, password="wrong password").cursor().execute("SELECT 1")
    with pytest.raises(Exception):
        hive.connect("127.0.0.1", server.port, username=USER).cursor().execute("SELECT 1")
    with connect(server) as conn:  # and the server still serves
        assert query(conn, "SELECT 1") == [(1,)]


def refused_statements(lake: Path) -> list[str]:
    gold = "gold.engagement_daily"
    path = f"{lake}/gold/engagement_daily"
    return [
        f"INSERT INTO {gold} SELECT * FROM {gold}",
        f"INSERT OVERWRITE {gold} SELECT * FROM {gold}",
        f"DELETE FROM {gold}",
        f"DELETE FROM {gold} WHERE dau > 0",
        f"UPDATE {gold} SET dau = 0",
        f"MERGE INTO {gold} t USING {gold} s ON t.activity_date = s.activity_date WHEN MATCHED THEN DELETE",
        f"TRUNCATE TABLE {gold}",
        f"DROP TABLE {gold}",
        f"DROP TABLE IF EXISTS {gold}",
        "DROP DATABASE gold CASCADE",
        f"ALTER TABLE {gold} ADD COLUMNS (x INT)",
        f"ALTER TABLE {gold} SET TBLPROPERTIES ('delta.appendOnly' = 'true')",
        f"ALTER TABLE {gold} RENAME TO gold.renamed",
        "CREATE TABLE gold.made_here (x INT) USING delta",
        f"CREATE TABLE gold.inside_lake (x INT) USING delta LOCATION '{lake}/gold/inside_lake'",
        f"CREATE TABLE gold.ctas USING delta LOCATION '{lake}/gold/ctas' AS SELECT 1 AS x",
        f"CREATE OR REPLACE TABLE gold.engagement_daily USING delta LOCATION '{path}' AS SELECT 1 AS x",
        "CREATE VIEW gold.v AS SELECT 1 AS x",
        "CREATE DATABASE made_here",
        f"INSERT INTO delta.`{path}` SELECT * FROM {gold}",
        f"DELETE FROM delta.`{path}`",
        f"INSERT OVERWRITE DIRECTORY '{lake}/gold/dir' USING parquet SELECT 1 AS x",
        f"OPTIMIZE {gold}",
        f"VACUUM {gold} RETAIN 0 HOURS",
        f"RESTORE TABLE {gold} TO VERSION AS OF 0",
        f"CREATE TABLE gold.cloned SHALLOW CLONE {gold} LOCATION '{lake}/gold/cloned'",
        "DECLARE VARIABLE v INT",
        "BEGIN DELETE FROM gold.engagement_daily; END",
        f"CACHE TABLE {gold}",
        "ADD JAR '/tmp/none.jar'",
        "CREATE TEMPORARY FUNCTION f AS 'java.lang.String'",
        "EXECUTE IMMEDIATE 'DELETE FROM gold.engagement_daily'",
        "SELECT reflect('java.lang.System', 'getProperty', 'user.dir')",
    ]


@pytest.mark.bi
def test_writes_drops_and_alters_are_refused_and_the_lake_is_unchanged(server, bi_lake):
    root, _ = bi_lake
    lake = root / "lake"
    before = lake_files(lake)
    total = gold_sum_dau(lake)
    not_refused = []
    with connect(server, database="gold") as conn:
        for sql in refused_statements(lake):
            try:
                query(conn, sql)
                not_refused.append((sql, "ran"))
            except Exception as exc:  # noqa: BLE001 - the message is checked
                if "read-only" not in str(exc):
                    not_refused.append((sql, str(exc)[:300]))
        # the same connection still reads, and SET / USE / EXPLAIN are allowed
        query(conn, "SET spark.sql.shuffle.partitions=2")
        query(conn, "USE gold")
        assert query(conn, "SELECT sum(dau) FROM engagement_daily") == [(total,)]
        assert query(conn, "EXPLAIN SELECT * FROM engagement_daily")
    assert not_refused == []
    assert lake_files(lake) == before
    # (this test runs before the pipeline run below): registering the tables at start wrote nothing either
    assert before == server.lake_at_start


@pytest.mark.bi
def test_a_second_client_sees_the_new_version_after_a_pipeline_run(server, bi_lake, spark, cfg):
    root, held_back = bi_lake
    lake = root / "lake"
    with connect(server) as first:
        before = query(first, "SELECT sum(dau) FROM gold.engagement_daily")[0][0]
        assert before == gold_sum_dau(lake)
        for day in held_back:  # the two held-back days land, and the pipeline runs (the server keeps running)
            target = root / "landing" / "events" / day.name
            target.mkdir(parents=True, exist_ok=True)
            for f in day.iterdir():
                (target / f.name).write_bytes(f.read_bytes())
        pipeline.run(spark, cfg, str(root / "landing"), str(lake), progress=lambda m: None)
        after = gold_sum_dau(lake)
        assert after > before
        with connect(server) as second:
            assert query(second, "SELECT sum(dau) FROM gold.engagement_daily") == [(after,)]
        assert query(first, "SELECT sum(dau) FROM gold.engagement_daily") == [(after,)]


@pytest.mark.bi
def test_without_users_the_endpoint_says_it_is_open_and_takes_any_user(bi_lake):
    from pyhive import hive

    root, _ = bi_lake
    srv = Server(root / "lake", free_port())
    try:
        srv.wait()
        assert any("OPEN" in line for line in srv.lines), srv.lines
        with hive.connect("127.0.0.1", srv.port, username="anyone") as conn:
            assert query(conn, "SELECT count(*) FROM gold.engagement_daily")[0][0] > 0
    finally:
        assert srv.stop() == 0


# ---------------------------------------------------------------- bad input (no server starts)

def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*LAKEHOUSE, *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_a_missing_lake_is_one_line_and_a_non_zero_exit(tmp_path):
    done = run_cli("serve-sql", "--lake", str(tmp_path / "nowhere"), "--port", str(free_port()))
    assert done.returncode == 2
    assert done.stderr.strip() == f"lakehouse serve-sql: error: lake folder not found: {tmp_path / 'nowhere'}"
    assert not (tmp_path / "nowhere").exists()


def test_a_lake_without_tables_is_one_line(tmp_path):
    done = run_cli("serve-sql", "--lake", str(tmp_path), "--port", str(free_port()))
    assert done.returncode == 2
    assert done.stderr.strip().endswith("(run `lakehouse run` first)")
    assert list(tmp_path.iterdir()) == []


def test_a_port_already_taken_is_one_line_and_leaves_the_lake_alone(tmp_path):
    import pyarrow as pa
    from deltalake import write_deltalake

    lake = tmp_path / "lake"
    write_deltalake(str(lake / "gold" / "engagement_daily"), pa.table({"dau": [1, 2]}))
    before = lake_files(lake)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_cli("serve-sql", "--lake", str(lake), "--port", str(port))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"lakehouse serve-sql: error: port {port} on 127.0.0.1 is already in use: pass --port with a free port, "
        "or stop what listens there"]
    assert lake_files(lake) == before


def test_a_server_that_cannot_start_says_why_in_one_line(tmp_path):
    import pyarrow as pa
    from deltalake import write_deltalake

    write_deltalake(str(tmp_path / "lake" / "gold" / "engagement_daily"), pa.table({"dau": [1]}))
    done = run_cli("serve-sql", "--lake", str(tmp_path / "lake"), "--port", str(free_port()),
                   "--set", "serve_sql.driver_memory=12q")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "lakehouse serve-sql: error: the SQL endpoint did not start: Invalid maximum heap size: -Xmx12q"]


def test_a_missing_users_file_is_one_line(tmp_path):
    import pyarrow as pa
    from deltalake import write_deltalake

    write_deltalake(str(tmp_path / "lake" / "gold" / "engagement_daily"), pa.table({"dau": [1]}))
    done = run_cli("serve-sql", "--lake", str(tmp_path / "lake"), "--port", str(free_port()),
                   "--users-file", str(tmp_path / "none"))
    assert done.returncode == 2
    assert "users file not found" in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_the_password_file_holds_only_salted_hashes(tmp_path):
    from lakehouse.passwords import read_users, set_user, verify

    path = tmp_path / "users"
    set_user(str(path), "ana", "s3cret-pass")
    set_user(str(path), "bo", "s3cret-pass")
    text = path.read_text()
    assert "s3cret-pass" not in text
    users = read_users(str(path))
    assert users["ana"] != users["bo"]  # salted
    assert verify("s3cret-pass", users["ana"]) and not verify("wrong", users["ana"])
    assert oct(path.stat().st_mode & 0o777) == "0o600"
