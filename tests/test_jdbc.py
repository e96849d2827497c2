"""Database sources (kind `jdbc`, docs/sources.md) against a real, throwaway PostgreSQL server.

The `pg` fixture makes a cluster with Debian's `initdb` in a temporary folder and starts it with
`pg_ctl` on 127.0.0.1 and a free port (its Unix socket in the same folder), with a password-only
login for the user `bob`. initdb refuses to run as root, so as root the server runs as the
`postgres` user Debian's package creates (else `nobody`) through `runuser`. Without PostgreSQL
the tests skip, saying why; `scripts/setup.sh` installs it when it can. Run by `make test-pg`.

Cost: three `lakehouse run` processes (one killed) plus in-process runs on the shared session.
"""

from __future__ import annotations

import datetime as dt
import glob
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from deltalake import DeltaTable

from lakehouse import bronze, jdbc, ops, pipeline, silver
from lakehouse.sources import Source, SourceError, parse_flag
from lakehouse.tables import Lake

pytestmark = [pytest.mark.pg]

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "s3cret-Pg-pw"  # bob's; must never show in output, errors or ops tables
PW_ENV = "LAKEHOUSE_TEST_PG_PASSWORD"
EVENTS_RAW = ("CREATE TABLE events_raw (event_id bigint PRIMARY KEY, user_id text, event_type text NOT NULL, "
              "ts timestamptz NOT NULL, device text, country text, amount numeric(10,2))")


def _bindir() -> Path | None:
    """A folder with initdb, pg_ctl and psql: the PATH's initdb (its real folder), else Debian's newest."""
    found = shutil.which("initdb")
    candidates = [Path(os.path.realpath(found)).parent] if found else []
    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]), reverse=True)]
    return next((d for d in candidates if all((d / b).is_file() for b in ("initdb", "pg_ctl", "psql"))), None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Postgres:
    """The running test server: its URL, and `sql` to run statements as its superuser."""

    def __init__(self, bindir: Path, port: int, superuser_pw: str):
        self.bindir, self.port, self.superuser_pw = bindir, port, superuser_pw
        self.url = f"jdbc:postgresql://127.0.0.1:{port}/app"

    def sql(self, text: str, db: str = "app") -> str:
        done = subprocess.run([str(self.bindir / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "lakehouse",
                               "-d", db, "-v", "ON_ERROR_STOP=1", "-qAt", "-c", text],
                              capture_output=True, text=True, env={**os.environ, "PGPASSWORD": self.superuser_pw})
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()


@pytest.fixture(scope="session")
def pg():
    """A throwaway PostgreSQL server (initdb + pg_ctl), database `app`, login `bob` / PASSWORD."""
    bindir = _bindir()
    if bindir is None:
        pytest.skip("PostgreSQL not installed (no initdb/pg_ctl/psql on PATH or in /usr/lib/postgresql/*/bin): "
                    "run scripts/setup.sh or apt-get install postgresql")
    root = Path(tempfile.mkdtemp(prefix="lakehouse-pg-"))  # not pytest's tmp: that is root-only (0700)
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb and postgres refuse to run as root
        user = "postgres" if any(p.pw_name == "postgres" for p in pwd.getpwall()) else "nobody"
        shutil.chown(root, user)
        as_user = ["runuser", "-u", user, "--"]
    superuser_pw = "super-" + os.urandom(6).hex()
    (root / "pw").write_text(superuser_pw + "\n")
    if as_user:
        shutil.chown(root / "pw", as_user[2])
    port = _free_port()
    ctl = [*as_user, str(bindir / "pg_ctl"), "-D", str(root / "data")]
    try:
        subprocess.run([*as_user, str(bindir / "initdb"), "-D", str(root / "data"), "-U", "lakehouse", "-E", "UTF8",
                        "--auth=scram-sha-256", f"--pwfile={root / 'pw'}"], check=True, capture_output=True)
        subprocess.run([*ctl, "-l", str(root / "log"), "-w", "-t", "60", "-o", f"-h 127.0.0.1 -p {port} -k {root}", "start"],
                       check=True, capture_output=True)
    except subprocess.CalledProcessError as exc:
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f"could not start PostgreSQL: {exc.stderr.decode(errors='replace')[-500:]}")
    server = Postgres(bindir, port, superuser_pw)
    try:
        server.sql(f"CREATE ROLE bob LOGIN PASSWORD '{PASSWORD}'", db="postgres")
        server.sql("CREATE DATABASE app OWNER bob", db="postgres")
        server.sql("ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO bob")  # tables made by `sql`
        yield server
    finally:
        subprocess.run([*ctl, "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def _insert(pg: Postgres, table: str, rows: list[tuple]) -> None:
    def lit(v):
        return "NULL" if v is None else str(v) if isinstance(v, (int, float)) else "'" + str(v).replace("'", "''") + "'"
    pg.sql(f"INSERT INTO {table} VALUES " + ", ".join("(" + ", ".join(lit(v) for v in r) + ")" for r in rows))


def _rows(lake: Path, table: str, *columns: str) -> list[tuple]:
    t = DeltaTable(str(lake / table.replace(".", "/"))).to_pyarrow_table(columns=list(columns)).to_pylist()
    return sorted(tuple(r[c] for c in columns) for r in t)


def _cli(args: list[str], **popen) -> subprocess.Popen:
    env = {**os.environ, PW_ENV: PASSWORD, "CI": "1"}
    return subprocess.Popen([sys.executable, "-m", "lakehouse.cli", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, start_new_session=True, cwd=ROOT, **popen)


def _finish(proc: subprocess.Popen, timeout: float = 900) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


FIRST = [  # event_id, user_id, event_type, ts, device, country, amount
    (1, "u1", "page_view", "2026-01-05 10:00:00+00", "web", "DE", None),
    (2, "u1", "product_view", "2026-01-05 10:01:00.123456+00", "web", "DE", None),
    (3, "u1", "purchase", "2026-01-05 11:02:00+01", "web", "DE", 19.99),  # 10:02 UTC
    (4, "u2", "purchase", "2026-01-05 12:00:00+00", "mobile", "FR", 5.5),
]
LATER = [(5, "u2", "purchase", "2026-01-06 09:00:00+00", "mobile", "FR", 10.0),
         (6, "u3", "page_view", "2026-01-06 09:30:00+00", "tablet", "US", None)]


def test_a_table_is_read_once_by_its_watermark_across_runs_and_a_kill(pg, spark, cfg, tmp_path, monkeypatch):
    """Run 1 is SIGKILLed right after it planned (0, 4]; rows 5-6 arrive; run 2 replays exactly
    (0, 4]; run 3 reads (4, 6] and builds gold; a run with nothing new writes nothing."""
    pg.sql(EVENTS_RAW)
    _insert(pg, "events_raw", FIRST)
    flag = f"{pg.url}?table=events_raw&watermark=event_id&user=bob&password_env={PW_ENV}"
    lake = tmp_path / "lake"
    killed = _cli(["run", "--lake", str(lake), "--source", flag, "--only", "bronze"])
    planned = lake / "ops" / "ingest_files" / "_delta_log" / f"{0:020d}.json"
    deadline = time.monotonic() + 600
    while not planned.exists() and killed.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.killpg(killed.pid, signal.SIGKILL)
    code, out, err = _finish(killed)
    assert code == -signal.SIGKILL, (code, out, err)
    manifest = ops.read(Lake(str(lake)), "ops.ingest_files")
    assert [(r["status"], r["file_path"], r["size"], r["source"], r["source_kind"]) for r in manifest] == [
        ("planned", "jdbc:jdbc:events_raw:event_id:(,4]", 4, "jdbc", "jdbc")]
    assert not (lake / "bronze" / "events").exists()

    _insert(pg, "events_raw", LATER)  # after planning: not part of the replayed batch
    code, out, err = _finish(_cli(["run", "--lake", str(lake), "--source", flag, "--only", "bronze"]))
    assert code == 0, err
    assert "batch 1 (replayed)" in out
    assert _rows(lake, "bronze.events", "batch_id") == [(1,)] * 4

    code, out, err = _finish(_cli(["run", "--lake", str(lake), "--source", flag]))
    assert code == 0, err
    assert PASSWORD not in out + err
    origins = ["jdbc:jdbc:events_raw:event_id:(,4]", "jdbc:jdbc:events_raw:event_id:(4,6]"]
    assert sorted({(r["batch_id"], r["file_path"], r["size"]) for r in ops.read(Lake(str(lake)), "ops.ingest_files")}) == [
        (1, origins[0], 4), (2, origins[1], 2)]
    values = _rows(lake, "bronze.events", "batch_id", "source", "source_kind", "source_file", "value")
    assert [v[:4] for v in values] == [(1, "jdbc", "jdbc", origins[0])] * 4 + [(2, "jdbc", "jdbc", origins[1])] * 2
    assert json.loads(values[1][4]) == {"event_id": 2, "user_id": "u1", "event_type": "product_view",
                                        "ts": "2026-01-05T10:01:00.123456Z", "device": "web", "country": "DE"}
    got = _rows(lake, "silver.events", "event_id", "event", "user_id", "ts", "device", "country", "amount")
    assert [(g[0], g[1], g[2], g[3].astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f").removesuffix(".000000"),
             *g[4:]) for g in got] == [
        ("1", "page_view", "u1", "2026-01-05T10:00:00", "web", "DE", None),
        ("2", "item_view", "u1", "2026-01-05T10:01:00.123456", "web", "DE", None),
        ("3", "purchase", "u1", "2026-01-05T10:02:00", "web", "DE", 19.99),
        ("4", "purchase", "u2", "2026-01-05T12:00:00", "mobile", "FR", 5.5),
        ("5", "purchase", "u2", "2026-01-06T09:00:00", "mobile", "FR", 10.0),
        ("6", "page_view", "u3", "2026-01-06T09:30:00", "tablet", "US", None),
    ]
    assert [(d.isoformat(), *r) for d, *r in _rows(lake, "gold.event_counts_daily", "activity_date", "event", "events", "users") if r[1]] == [
        ("2026-01-05", "item_view", 1, 1), ("2026-01-05", "page_view", 1, 1), ("2026-01-05", "purchase", 2, 2),
        ("2026-01-06", "page_view", 1, 1), ("2026-01-06", "purchase", 1, 1)]

    # Nothing new: no batch, no write (in this process's session).
    monkeypatch.setenv(PW_ENV, PASSWORD)
    versions = {t: ops.table_version(Lake(str(lake)), t) for t in ("ops.ingest_files", "bronze.events", "silver.events")}
    summary = pipeline.run(spark, cfg, [parse_flag(flag)], str(lake), progress=None, register=False)
    assert summary.files == {} and summary.rows == {}
    assert {t: ops.table_version(Lake(str(lake)), t) for t in versions} == versions
    for name in ("ops.ingest_files", "ops.pipeline_runs"):
        assert PASSWORD not in json.dumps(ops.read(Lake(str(lake)), name), default=str)


SHOP = ("CREATE TABLE IF NOT EXISTS shop_events (id text, customer text, what text, happened_at timestamptz, sku text, "
        "price numeric(10,2), country text)")


def _shop(pg: Postgres) -> Source:
    options = {"table": "shop_events", "watermark": "happened_at", "lag": 60, "user": "bob", "password_env": PW_ENV,
               "events": {"fields": {"event_id": "id", "user_id": "customer", "event": "what", "ts": "happened_at"},
                          "properties": {"item_id": "sku", "amount": "price"}, "context": {"country": "country"},
                          "renames": {"bought": "purchase"}}}
    return Source(name="shop", kind="jdbc", uri=pg.url, options=options)


def test_a_mapped_table_with_a_timestamp_watermark_and_lag_quarantines_what_does_not_map(pg, spark, cfg, tmp_path, monkeypatch):
    monkeypatch.setenv(PW_ENV, PASSWORD)
    pg.sql(SHOP)
    _insert(pg, "shop_events", [
        ("a1", "c1", "bought", "2026-01-05 10:00:00+00", "p1", 19.99, "DE"),
        ("a2", None, "bought", "2026-01-05 10:05:00+00", "p2", 5.00, "DE"),    # no user: missing_user_id
        ("a3", "c2", "bought", "2026-01-05 10:06:00+00", "p3", -1.00, "FR"),   # negative_amount
    ])
    # the newest row: the range ends `lag` seconds before it, so it waits for a later run
    pg.sql("INSERT INTO shop_events VALUES ('a4', 'c1', 'item_view', now() + interval '1 hour', 'p9', NULL, 'DE')")
    src = _shop(pg)
    cfg = {**cfg, "sources": [{"name": "shop", "kind": "jdbc", "uri": src.uri, **src.options}]}
    lake = Lake(str(tmp_path / "lake"))
    bronze.ingest(spark, lake, [src])
    silver.process(spark, lake, cfg, bronze.committed_batches(lake))
    [planned] = [r for r in ops.read(lake, "ops.ingest_files") if r["status"] == "committed"]
    assert planned["file_path"].startswith("jdbc:shop:shop_events:happened_at:(,") and planned["size"] == 3
    got = _rows(tmp_path / "lake", "silver.events", "event_id", "event", "user_id", "item_id", "amount", "country")
    assert got == [("a1", "purchase", "c1", "p1", 19.99, "DE")]
    quarantined = _rows(tmp_path / "lake", "silver.quarantine", "reason", "source_file")
    assert quarantined == [("missing_user_id", planned["file_path"]), ("negative_amount", planned["file_path"])]
    # The newest row stays within the lag: nothing new to plan yet.
    assert jdbc.plan(spark, src, ops.read(lake, "ops.ingest_files")) == []


def test_bad_database_input_is_one_line_naming_the_source_and_nothing_is_written(pg, spark, tmp_path, monkeypatch):
    monkeypatch.setenv(PW_ENV, PASSWORD)
    pg.sql(SHOP)
    good = _shop(pg)
    lake = Lake(str(tmp_path / "lake"))
    cases = [
        (Source("shop", "jdbc", f"jdbc:postgresql://127.0.0.1:{_free_port()}/app", good.options),
         f"source shop: cannot read jdbc:postgresql://127.0.0.1:"),
        (Source("shop", "jdbc", pg.url, {**good.options, "table": "no_such_table"}), 'relation "no_such_table" does not exist'),
        (Source("shop", "jdbc", pg.url, {**good.options, "events": {"fields": {"user_id": "client"}}}),
         "source shop: events.fields.user_id names column 'client', which shop_events does not have (its columns: id, "),
        (Source("shop", "jdbc", pg.url, {**good.options, "watermark": "sku"}), "watermark column 'sku' is string"),
    ]
    for src, message in cases:
        with pytest.raises(SourceError) as err:
            bronze.ingest(spark, lake, [src])
        text = str(err.value)
        assert message in text and "\n" not in text and PASSWORD not in text, text
    assert not os.path.exists(lake.path("ops.ingest_files")) and not os.path.exists(lake.path("bronze.events"))

    # Through the command line: wrong password -> one line, exit 2, no password, no Java trace.
    monkeypatch.setenv(PW_ENV, "wrong-" + PASSWORD)
    flag = f"{pg.url}?table=shop_events&watermark=happened_at&user=bob&password_env={PW_ENV}"
    proc = subprocess.run([sys.executable, "-m", "lakehouse.cli", "run", "--lake", str(tmp_path / "cli"), "--source", flag],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last == (f"lakehouse run: error: source jdbc: cannot read {pg.url}: "
                    'password authentication failed for user "bob"'), proc.stderr
    assert PASSWORD not in proc.stdout + proc.stderr and "at org." not in proc.stderr
    assert not (tmp_path / "cli" / "ops" / "ingest_files").exists() and not (tmp_path / "cli" / "bronze").exists()
    [logged] = ops.read(Lake(str(tmp_path / "cli")), "ops.pipeline_runs")  # the failed run's log line, redacted
    assert logged["status"] == "failed" and last.endswith(logged["message"]) and PASSWORD not in logged["message"]


def test_a_generated_set_loaded_into_postgresql_gives_the_landings_silver_events(pg, spark, cfg, tmp_path, monkeypatch):
    """`lakehouse generate --format sql` writes a psql script loading `events_raw`; read back through a
    jdbc source (watermark `id`), it gives the same silver events as the same seed's landing folder."""
    from lakehouse import shapes

    shapes.generate(str(tmp_path / "landing"), "landing", users=30, days=4, seed=5)
    shapes.generate(str(tmp_path / "sql"), "sql", users=30, days=4, seed=5)
    pg.sql("CREATE DATABASE generated OWNER bob", db="postgres")
    done = subprocess.run([str(pg.bindir / "psql"), "-h", "127.0.0.1", "-p", str(pg.port), "-U", "lakehouse", "-d", "generated",
                           "-v", "ON_ERROR_STOP=1", "-q", "-f", str(tmp_path / "sql" / "events_raw.sql")],
                          capture_output=True, text=True, env={**os.environ, "PGPASSWORD": pg.superuser_pw})
    assert done.returncode == 0, done.stderr
    pg.sql("GRANT SELECT ON events_raw TO bob", db="generated")
    monkeypatch.setenv(PW_ENV, PASSWORD)
    sources = {
        "landing": [Source(name="landing", kind="landing", uri=str(tmp_path / "landing"))],
        "pg": [Source(name="pg", kind="jdbc", uri=pg.url.replace("/app", "/generated"),
                      options={"table": "events_raw", "watermark": "id", "user": "bob", "password_env": PW_ENV})],
    }
    columns = ("event_id", "event", "ts", "user_id", "session_id", "device", "country", "city", "page", "item_id",
               "price", "quantity", "amount", "currency", "payment_status", "score", "passed", "points")
    got = {}
    for name, srcs in sources.items():
        lake = Lake(str(tmp_path / f"lake-{name}"))
        bronze.ingest(spark, lake, srcs)
        silver.process(spark, lake, cfg, bronze.committed_batches(lake))
        got[name] = _rows(tmp_path / f"lake-{name}", "silver.events", *columns)
    assert len(got["landing"]) > 300
    assert got["pg"] == got["landing"]
