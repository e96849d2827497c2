"""`lakehouse serve-sql`: Spark's Thrift JDBC/ODBC server (HiveServer2 protocol) over a lake, read-only.

BI tools (Superset's `hive://`, Power BI's and Tableau's Spark ODBC connectors, DBeaver, beeline,
PyHive, impyla) connect to it and see the lake's Delta tables as the databases `bronze`, `silver`,
`gold` and `ops`. What runs, and where it comes from:

- The server is `spark-submit --class lakehouse.serve.ReadOnlyThriftServer` (lakehouse/java/): it
  registers every Delta table found under `<lake>/<layer>/<table>` in an in-memory catalog (nothing
  is written to the lake, no metastore folder), then starts Spark's own HiveThriftServer2, which the
  pyspark wheel ships (jars/spark-hive-thriftserver_2.13-*.jar). The Delta jars are the ones
  `spark.jars.packages` resolved from Maven for every other Spark session of the project (resolved
  here first if they are not cached yet); they go on the driver class path too, since Thrift
  sessions do not see jars added at run time.
- Read-only: the Spark SQL extension `lakehouse.serve.ReadOnlyExtension` checks every statement's
  analysed plan before it runs and refuses anything but queries and metadata commands (SHOW,
  DESCRIBE, EXPLAIN, SET, USE): INSERT, DELETE, UPDATE, MERGE, CREATE/DROP/ALTER of any kind,
  OPTIMIZE, VACUUM, CACHE, ADD JAR, CREATE FUNCTION, `reflect()`. It is an allow-list, so a command
  it does not know is refused too. Statements Delta runs during analysis (RESTORE) are refused when
  parsed. Behind both, the lake's Delta log store is `lakehouse.serve.ReadOnlyLogStore`, which
  reads like Delta's own and refuses every commit.
- New versions: each query reads the latest Delta snapshot (`spark.databricks.delta.stalenessLimit`
  is 0), so a pipeline run is seen by the next query without a restart. Tables created after the
  start (a layer the lake did not have yet) need a restart.
- The Java sources are compiled once with the JDK's `javac` against pyspark's and Delta's jars, into a jar
  cached beside the class-data archive (inside the virtual environment, else ~/.cache/lakehouse).
- Authentication: `NONE` (SASL PLAIN, any user name and password) unless `serve_sql.users_file`
  names a password file (`lakehouse serve-sql-user`), then `CUSTOM` with
  `lakehouse.serve.PasswordFileAuthenticator`: a user name and its password are required, and the
  file holds only salted PBKDF2 hashes.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path
from typing import Callable

from lakehouse.config import cache_dir, conf_value
from lakehouse.objectstore import is_s3
from lakehouse.tables import REGISTRY, Lake, absolute, is_local, local_path

JAVA_SOURCES = Path(__file__).resolve().parent / "java"
MAIN_CLASS = "lakehouse.serve.ReadOnlyThriftServer"
EXTENSION = "lakehouse.serve.ReadOnlyExtension"
READY = "lakehouse serve-sql: ready"
# The Hive metastore each client session's close reaches (SessionState.close -> Hive.getMSC): an in-memory
# Derby database with a name. Spark's own default for it, `jdbc:derby:memory:;databaseName=...`, names
# no in-memory database, so Derby tried to create one at derby.system.home, failed with XBM0J ("Directory
# ... already exists") and Hive retried 10 times 2 s apart: every session close took ~20 s and logged errors.
METASTORE_URL = "jdbc:derby:memory:lakehouse_serve_sql;create=true"


class ServeError(RuntimeError):
    """Something the user can fix before the server can start; the message says what."""


def lake_tables(lake: str) -> list[tuple[str, str]]:
    """`[(layer.table, location), ...]` of the registered tables that exist in the lake, in name order.

    Raises ServeError when a local lake folder is missing or holds no table.
    """
    from deltalake import DeltaTable

    if is_s3(lake):
        raise ServeError(f"serve-sql over an object-store lake ({lake}) is not supported yet: serve a local copy, "
                         "or query it with `lakehouse sql` (docs/object-storage.md, known limits)")
    if is_local(lake):
        if not os.path.isdir(local_path(lake)):
            raise ServeError(f"lake folder not found: {lake}")
        lake = absolute(lake)
    found = []
    for name in sorted(REGISTRY):
        location = Lake(lake).path(name)
        if DeltaTable.is_deltatable(local_path(location)):
            found.append((name, location))
    if not found:
        raise ServeError(f"no tables found in lake {lake} (run `lakehouse run` first)")
    return found


def check_port(host: str, port: int) -> None:
    """Raise ServeError naming the fix when `host:port` cannot be listened on (taken, bad host or port)."""
    if not 0 < port < 65536:
        raise ServeError(f"--port: must be between 1 and 65535, got {port}")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ServeError(f"--host {host}: not an address of this machine ({exc.strerror})") from exc
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the JVM's server socket does
        try:
            sock.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ServeError(f"port {port} on {host} is already in use: pass --port with a free port, "
                                 "or stop what listens there") from exc
            raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror}; pass another --host or --port") from exc


def _pyspark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def _cache_dir() -> Path:
    folder = cache_dir("serve")
    if folder is not None:
        return folder
    raise ServeError("no writable folder for the compiled server classes (tried the venv's var/ and ~/.cache/lakehouse)")


def _javac() -> str:
    home = os.environ.get("JAVA_HOME")
    javac = os.path.join(home, "bin", "javac") if home else shutil.which("javac")
    if not javac or not os.path.exists(javac):
        raise ServeError("serve-sql compiles its read-only guard with a JDK's javac, which is missing: "
                         "install openjdk-17-jdk-headless (or set JAVA_HOME to a JDK 17)")
    return javac


def guard_jar(delta: list[str]) -> Path:
    """The jar of lakehouse/java/ compiled against this pyspark's jars and the `delta` jar files
    (built once, then cached).

    Its name is a hash of the sources, the pyspark version and the Delta jar names, so a change of
    any of them compiles again.
    """
    import pyspark

    sources = sorted(JAVA_SOURCES.rglob("*.java"))
    digest = hashlib.sha256(pyspark.__version__.encode())
    for item in [os.path.basename(j) for j in delta] + sources:
        digest.update(item.name.encode() + item.read_bytes() if isinstance(item, Path) else item.encode())
    target = _cache_dir() / f"lakehouse-serve-{digest.hexdigest()[:16]}.jar"
    if target.is_file():
        return target
    classpath = os.pathsep.join([str(_pyspark_home() / "jars" / "*"), *delta])
    with tempfile.TemporaryDirectory(prefix="lakehouse-javac-") as out:
        done = subprocess.run([_javac(), "--release", "17", "-nowarn", "-d", out, "-cp", classpath, *map(str, sources)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            first = next((line for line in done.stderr.splitlines() if "error" in line), done.stderr.strip()[:300])
            raise ServeError(f"could not compile the server classes: {first}")
        tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as jar:
            jar.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\r\nCreated-By: lakehouse\r\n\r\n")
            for cls in sorted(Path(out).rglob("*.class")):
                jar.write(cls, cls.relative_to(out).as_posix())
        os.replace(tmp, target)
    return target


def delta_jars(cfg: dict) -> list[str]:
    """The Delta jar files: `spark.jars`, else the Ivy cache of `spark.packages` (resolved now if empty)."""
    from lakehouse.session import cached_delta_jars

    spark_cfg = cfg.get("spark", {})
    jars = spark_cfg.get("jars") or cached_delta_jars(spark_cfg.get("packages", ""))
    if not jars and spark_cfg.get("packages"):
        # The same resolution every Spark session of the project does (spark.jars.packages, Maven Central).
        code = ("import sys, json; from lakehouse.session import build_spark; "
                "cfg = json.loads(sys.argv[1]); cfg['spark']['class_data_sharing'] = False; build_spark(cfg).stop()")
        import json

        done = subprocess.run([sys.executable, "-c", code, json.dumps(cfg, default=str)], capture_output=True, text=True)
        jars = cached_delta_jars(spark_cfg["packages"])
        if done.returncode != 0 or not jars:
            tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise ServeError(f"could not resolve the Delta jars {spark_cfg['packages']} from Maven: {tail}")
    return [j for j in str(jars).split(",") if j]


def command(cfg: dict, tables_file: str, workdir: str, host: str, port: int,
            users_file: str | None = None, lake_scheme: str = "file") -> list[str]:
    """The spark-submit command line that starts the server (see the module docstring); `lake_scheme`
    is the lake's storage scheme, whose Delta log store becomes the read-only one."""
    from lakehouse.config import conf_dir

    spark_cfg = cfg.get("spark", {})
    serve_cfg = cfg.get("serve_sql") or {}
    delta = delta_jars(cfg)
    jars = [*delta, str(guard_jar(delta))]
    conf = {k: conf_value(v) for k, v in (spark_cfg.get("conf") or {}).items()}
    java_opts = [conf.pop("spark.driver.extraJavaOptions", ""), f"-Dderby.system.home={workdir}"]
    log_conf = conf_dir() / "log4j2.properties"
    if log_conf.is_file():
        java_opts.append(f"-Dlog4j2.configurationFile=file:{log_conf}")
    if users_file:
        java_opts.append(f"-Dlakehouse.serve.users_file={users_file}")
    conf.update({
        "spark.sql.extensions": f"io.delta.sql.DeltaSparkSessionExtension,{EXTENSION}",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.sql.catalogImplementation": "in-memory",
        "spark.sql.warehouse.dir": os.path.join(workdir, "warehouse"),
        "spark.databricks.delta.stalenessLimit": "0",
        "spark.hadoop.javax.jdo.option.ConnectionURL": METASTORE_URL,
        f"spark.delta.logStore.{lake_scheme}.impl": "lakehouse.serve.ReadOnlyLogStore",
        "spark.driver.extraJavaOptions": " ".join(o for o in java_opts if o),
    })
    master = os.environ.get("LAKEHOUSE_SPARK_MASTER", spark_cfg.get("master", "local[2]"))
    cmd = [str(_pyspark_home() / "bin" / "spark-submit"), "--class", MAIN_CLASS,
           "--name", "lakehouse serve-sql", "--master", master,
           "--driver-memory", str(serve_cfg.get("driver_memory") or spark_cfg.get("driver_memory", "2g")),
           "--jars", ",".join(jars), "--driver-class-path", os.pathsep.join(jars)]
    for key, value in conf.items():
        cmd += ["--conf", f"{key}={value}"]
    hive = {
        "hive.server2.thrift.bind.host": host,
        "hive.server2.thrift.port": str(port),
        "hive.server2.transport.mode": "binary",
        "hive.server2.enable.doAs": "false",
        "hive.server2.authentication": "CUSTOM" if users_file else "NONE",
    }
    if users_file:
        hive["hive.server2.custom.authentication.class"] = "lakehouse.serve.PasswordFileAuthenticator"
    cmd += [str(jars[-1]), tables_file]
    for key, value in hive.items():
        cmd += ["--hiveconf", f"{key}={value}"]
    return cmd


def _first_error(log: Path) -> str:
    """The most telling line of a failed server's log."""
    text = log.read_text(errors="replace") if log.is_file() else ""
    for needle in ("Address already in use", "BindException", "Could not create ServerSocket"):
        if needle in text:
            return "the port is already in use: pass --port with a free port"
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for ln in lines:  # the JVM's own complaint about an option comes before its generic "Error: Could not create"
        if ln.startswith(("Invalid", "Unrecognized", "Improperly specified")):
            return ln[:400]
    for ln in lines:
        if ("Exception" in ln or "ERROR" in ln or "Error" in ln) and not ln.startswith("at "):
            return ln[:400]
    return lines[-1][:400] if lines else "no output"


def serve(cfg: dict, lake: str, host: str = "127.0.0.1", port: int = 10000,
          users_file: str | None = None, say: Callable[[str], None] = print,
          timeout: float = 600) -> int:
    """Start the server in the foreground and return its exit code when it stops (SIGINT/SIGTERM stop it).

    Checks first (each a one-line ServeError): the lake exists and holds tables, the port is free, the
    users file (if any) is readable. `timeout` is the most seconds to wait for the server to be ready.
    """
    tables = lake_tables(lake)
    check_port(host, port)
    if users_file:
        from lakehouse.passwords import read_users

        users = read_users(users_file)
    with tempfile.TemporaryDirectory(prefix="lakehouse-serve-sql-") as workdir:
        tables_file = os.path.join(workdir, "tables.tsv")
        with open(tables_file, "w", encoding="utf-8") as fh:
            fh.writelines(f"{name}\t{location}\n" for name, location in tables)
        scheme = tables[0][1].split("://", 1)[0] if "://" in tables[0][1] else "file"
        cmd = command(cfg, tables_file, workdir, host, port, users_file=users_file, lake_scheme=scheme)
        env = {**os.environ, "SPARK_HOME": str(_pyspark_home()), "PYSPARK_PYTHON": sys.executable}
        log = Path(workdir) / "server.log"
        say(f"starting the SQL endpoint on {host}:{port} over {len(tables)} tables of {lake} ...")
        proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        ready = threading.Event()

        def keep_log() -> None:
            # The server's log (errors only: conf/log4j2.properties) goes to our stderr once it is up, as
            # a service's log should; before that it is only kept, for the one-line error of a failed start.
            with open(log, "w") as fh:
                for line in proc.stderr:
                    fh.write(line)
                    fh.flush()
                    if ready.is_set():
                        sys.stderr.write(line)

        def pump() -> None:
            for line in proc.stdout:
                line = line.rstrip("\n")
                if line.startswith(READY):
                    ready.set()
                    say(line)
                    say(f"JDBC: jdbc:hive2://{host}:{port}/gold   SQLAlchemy: hive://USER@{host}:{port}/gold   "
                        f"(binary transport; docs/bi-tools.md)")
                    if users_file:
                        say(f"authentication: user name and password required ({len(users)} user(s) in {users_file})")
                    else:
                        say(f"authentication: none: the endpoint is OPEN to anyone who can reach {host}:{port} "
                            "(any user name and password are accepted); set serve_sql.users_file to require passwords")
                    say("read-only: statements that would write, drop or alter anything are refused")

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        logger = threading.Thread(target=keep_log, daemon=True)
        logger.start()
        stop = {"signal": None}

        def on_signal(signum, _frame):
            stop["signal"] = signum
            if proc.poll() is None:
                proc.terminate()

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            deadline = time.monotonic() + timeout
            while proc.poll() is None and not ready.is_set() and time.monotonic() < deadline:
                time.sleep(0.2)
            if proc.poll() is None and not ready.is_set():
                proc.terminate()
                proc.wait(60)
                raise ServeError(f"the SQL endpoint was not ready after {timeout:.0f} s: {_first_error(log)}")
            code = proc.wait()
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(60)
                except subprocess.TimeoutExpired:
                    proc.kill()
            for s, handler in previous.items():
                signal.signal(s, handler)
        reader.join(5)
        logger.join(5)
        if stop["signal"] is not None:
            say("SQL endpoint stopped")
            return 0
        if not ready.is_set():
            raise ServeError(f"the SQL endpoint did not start: {_first_error(log)}")
        raise ServeError(f"the SQL endpoint stopped unexpectedly (exit code {code}): {_first_error(log)}")
