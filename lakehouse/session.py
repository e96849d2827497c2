"""The one Spark session builder used by jobs, the CLI and the test fixture."""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from typing import Iterable, Mapping

from pyspark.sql import SparkSession

from lakehouse import objectstore, ops, py4jcalls, silver
from lakehouse.config import conf_dir, conf_value, tuned  # noqa: F401 - tuned: part of this module's API
from lakehouse.errors import describe
from lakehouse.tables import Lake


class JavaMissingError(RuntimeError):
    """No usable Java 17 runtime: Spark cannot start."""


class ClusterError(RuntimeError):
    """A cluster master that does not answer, or executors that cannot run the job's Python: one line."""


def check_java() -> str:
    """Fail in one line when Java is missing, instead of a py4j gateway error; else `java -version`'s text."""
    java = os.path.join(os.environ["JAVA_HOME"], "bin", "java") if os.environ.get("JAVA_HOME") else shutil.which("java")
    if not java or not os.path.exists(java):
        raise JavaMissingError("Java 17 is required by Spark: install it (e.g. `apt-get install openjdk-17-jre-headless`) or set JAVA_HOME")
    out = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
    if '"17' not in out and " 17" not in out and '"21' not in out:
        first = out.splitlines()[0] if out else "unknown"
        raise JavaMissingError(f"Spark 4.2 needs Java 17 (found: {first}); install openjdk-17-jre-headless or set JAVA_HOME")
    return out


def cached_delta_jars(packages: str) -> str:
    """Local jar files of the Delta packages once Spark's Ivy resolution has cached them, else "".

    Using them directly skips a resolution (and its console output) at every start.
    """
    ivy = os.environ.get("LAKEHOUSE_IVY_DIR", os.path.expanduser("~/.ivy2.5.2"))
    found = []
    for coordinate in filter(None, (p.strip() for p in packages.split(","))):
        group, artifact, version = coordinate.split(":")
        found.append(os.path.join(ivy, "jars", f"{group}_{artifact}-{version}.jar"))
        if artifact.startswith("delta-spark"):
            found.append(os.path.join(ivy, "jars", f"{group}_delta-storage-{version}.jar"))
    return ",".join(found) if found and all(os.path.isfile(j) for j in found) else ""


def _s3_jars(spark_cfg: Mapping, excludes: str) -> tuple[str, str]:
    """(cached hadoop-aws jar files, "") once resolved, else ("", its Maven coordinates), saying so once."""
    coordinates = objectstore.spark_packages(spark_cfg)
    cached = objectstore.cached_package_jars(coordinates, excludes.split(","))
    if cached:
        return cached, ""
    print(f"lakehouse: first use of S3: Spark resolves {coordinates} and the AWS SDK bundle (about 700 MB) "
          "from Maven Central into the Ivy cache once; later starts use the cached jars", file=sys.stderr, flush=True)
    return "", coordinates


def master_url(cfg: dict) -> str:
    """The master this process's session runs on: spark-submit's `--master` under spark-submit, else
    $LAKEHOUSE_SPARK_MASTER or `spark.master` (an existing session's own master when there is one)."""
    from pyspark import SparkConf, SparkContext

    if SparkContext._active_spark_context is not None:
        return SparkContext._active_spark_context.master
    if os.environ.get("PYSPARK_GATEWAY_PORT"):
        SparkContext._ensure_initialized()  # connects to spark-submit's JVM, whose properties hold --master
        return SparkConf().get("spark.master", "local[*]")
    return os.environ.get("LAKEHOUSE_SPARK_MASTER", (cfg.get("spark") or {}).get("master", "local[2]"))


def master_addresses(master: str) -> list[tuple[str, int]]:
    """(host, port) of each master of a standalone URL `spark://h1:p1[,h2:p2]`; [] for any other master."""
    if not master.startswith("spark://"):
        return []
    found = []
    for part in master.removeprefix("spark://").split(","):
        host, _, port = part.strip().rpartition(":")
        if not host or not port.isdigit():
            raise ClusterError(f"Spark master {master}: expected spark://HOST:PORT (the master's port, 7077 by default)")
        found.append((host.strip("[]"), int(port)))
    return found


def check_master(master: str, timeout: float = 5.0) -> None:
    """Fail in one line when no master of a standalone `spark://` URL accepts a connection.

    Spark itself retries a master that does not answer for a minute and then stops the context
    under a running job; this check fails before the session (and any table write) starts.
    """
    errors = []
    for host, port in master_addresses(master):
        try:
            with socket.create_connection((host, port), timeout=timeout):
                return
        except OSError as exc:
            errors.append(exc.strerror or type(exc).__name__)
    if errors:
        raise ClusterError(
            f"Spark master {master} does not answer ({'; '.join(dict.fromkeys(errors))}): start the master "
            f"(docs/deploy.md, standalone cluster) or fix --master / spark.master (host and port, 7077 by default)")


def _executor_environment(_row=None) -> tuple[str, str]:
    """(Python version, pyspark version) where it runs: on an executor, in a Python worker that could
    import this module (so the lakehouse package is installed there)."""
    import pyspark

    return f"{sys.version_info[0]}.{sys.version_info[1]}", pyspark.__version__


def check_executors(spark: SparkSession, timeout: float) -> None:
    """On a cluster: run one Python task on an executor, and fail in one line when none runs in
    `timeout` seconds (no worker, or too little free memory or cores) or when the executors' Python
    is missing or differs from the driver's (its version, pyspark's, or no `lakehouse` package).

    Executors start their Python workers with the interpreter path the driver names
    (`spark.pyspark.python` / PYSPARK_PYTHON); that path must exist on every worker.
    """
    sc = spark.sparkContext
    group, outcome = f"lakehouse-executor-check-{os.getpid()}-{time.monotonic_ns()}", {}

    def probe() -> None:
        try:
            sc.setJobGroup(group, "lakehouse: executors run Python", interruptOnCancel=True)
            outcome["seen"] = sc.parallelize([0], 1).map(_executor_environment).collect()[0]
        except Exception as exc:  # noqa: BLE001 - reported below as one line
            outcome["error"] = exc

    worker = threading.Thread(target=probe, name="lakehouse-executor-check", daemon=True)
    worker.start()
    worker.join(timeout)
    python = sc.pythonExec
    if worker.is_alive():
        sc.cancelJobGroup(group)
        worker.join(30)
        raise ClusterError(
            f"no executor of {sc.master} ran a task within {timeout:.0f} s: check that workers are registered "
            f"with the master and have the cores and memory asked for (spark.executor.cores, spark.executor.memory, "
            f"spark.cores.max)")
    if "error" in outcome:
        text = str(outcome["error"])
        missing = "Cannot run program" in text or "No such file" in text
        reason = "not found on a worker" if missing else describe(outcome["error"])
        raise ClusterError(f"executors of {sc.master} cannot run Python {python} ({reason}): install the same Python "
                           f"environment (with the lakehouse package) at that path on every worker, or name it with "
                           f"--conf spark.pyspark.python=PATH")
    version, pyspark_version = outcome["seen"]
    driver = _executor_environment()
    if (version, pyspark_version) != driver:
        raise ClusterError(f"executors of {sc.master} run Python {version} with pyspark {pyspark_version}, the driver "
                           f"Python {driver[0]} with pyspark {driver[1]}: use the same environment on every worker "
                           f"(spark.pyspark.python)")


def build_spark(cfg: dict, app_name: str | None = None, uris: Iterable[str | None] = ()) -> SparkSession:
    """Create (or reuse) the Spark session with Delta and the settings of `cfg['spark']`.

    When one of `uris` (the landing, the lake) is on S3 (`s3://`, `s3a://`), the session also gets
    hadoop-aws (`objectstore.spark_packages`: resolved by Ivy on first use, then its cached jar
    files) and the `fs.s3a.*` settings derived from the standard AWS variables.

    On a standalone master (`spark://`) the master's port is checked first, and once a session on
    any cluster master exists one Python task runs on an executor (`check_executors`), so that a
    cluster that cannot run the job fails in one line before any table is written.
    """
    java_version = check_java()
    spark_cfg = cfg.get("spark", {})
    py4jcalls.install()  # fewer round trips per PySpark call (lakehouse/py4jcalls.py)
    # Python workers (UDFs, ML) run in this interpreter, not whatever `python3` is on the PATH; on a
    # cluster in the one `spark.pyspark.python` names (the same path on every worker).
    executor_python = (spark_cfg.get("conf") or {}).get("spark.pyspark.python") or sys.executable
    os.environ.setdefault("PYSPARK_PYTHON", str(executor_python))
    from pyspark import SparkContext

    new_context = SparkContext._active_spark_context is None
    master = master_url(cfg)
    if new_context:
        check_master(master)
    builder = (
        SparkSession.builder.appName(app_name or spark_cfg.get("app_name", "lakehouse"))
        .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
        .config("spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog")
        .config("spark.driver.memory", spark_cfg.get("driver_memory", "4g"))
    )
    # Under spark-submit the JVM (and its master and jars) already exist: only default them from Python.
    if not os.environ.get("PYSPARK_GATEWAY_PORT"):
        builder = builder.master(master)
    jars = spark_cfg.get("jars") or cached_delta_jars(spark_cfg.get("packages", ""))
    packages = [] if jars else [spark_cfg.get("packages") or ""]
    excludes = "".join(str(spark_cfg.get("package_excludes") or "").split())
    s3_conf, s3_resolving = {}, False
    if any(objectstore.is_s3(u) for u in uris):
        s3_jars, s3_packages = _s3_jars(spark_cfg, excludes)
        jars = ",".join(filter(None, [jars, s3_jars]))
        packages.append(s3_packages)
        s3_resolving = bool(s3_packages)
        s3_conf = objectstore.spark_conf()
    if jars:
        builder = builder.config("spark.jars", jars)
    if any(packages):
        builder = builder.config("spark.jars.packages", ",".join(filter(None, packages)))
        if excludes:
            builder = builder.config("spark.jars.excludes", excludes)
    for key, value in s3_conf.items():
        builder = builder.config(key, value)
    for key, value in (spark_cfg.get("conf") or {}).items():
        builder = builder.config(key, conf_value(value))
    java_opts = str((spark_cfg.get("conf") or {}).get("spark.driver.extraJavaOptions", ""))
    log_conf = conf_dir() / "log4j2.properties"
    if log_conf.is_file():
        java_opts = f"{java_opts} -Dlog4j2.configurationFile=file:{log_conf}".strip()
    # A new driver JVM of our own: map (or write at exit) the class-data archive (lakehouse/classdata.py),
    # and stop it cleanly at exit (`shutdown`).
    launching = SparkContext._active_spark_context is None and not os.environ.get("PYSPARK_GATEWAY_PORT")
    archive = None
    # (Not while Ivy resolves hadoop-aws: the archive's key would not name the classpath it holds.)
    if launching and spark_cfg.get("class_data_sharing", True) and not s3_resolving:
        from lakehouse import classdata

        extra, tmp, final = classdata.java_options(java_version, jars or "", java_opts)
        java_opts = f"{java_opts} {extra}".strip()
        archive = (tmp, final) if tmp is not None else None
    if java_opts:
        builder = builder.config("spark.driver.extraJavaOptions", java_opts)
    spark = builder.getOrCreate()
    if launching and not _SHUTDOWN:
        _SHUTDOWN.append(archive)
        atexit.register(shutdown)
    spark.sparkContext.setLogLevel("ERROR")
    if s3_conf:  # the credentials (never on the JVM's command line), and all of it on a JVM that existed already
        hadoop = spark.sparkContext._jsc.hadoopConfiguration()
        settings = {} if launching else {k.removeprefix("spark.hadoop."): v for k, v in s3_conf.items()}
        for key, value in {**settings, **objectstore.hadoop_credentials()}.items():
            hadoop.set(key, value)
    # PySpark logs every failed query as a JSON line on stderr; the CLI prints one line of its own.
    # (PySparkLogger.exception ignores levels, so the loggers are disabled.)
    from pyspark.logger import PySparkLogger

    for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
        PySparkLogger.getLogger(name).disabled = True
    check_seconds = float(spark_cfg.get("executor_check_seconds", 300) or 0)
    if new_context and not master.startswith("local") and check_seconds > 0:
        check_executors(spark, check_seconds)
    return spark


_SHUTDOWN: list = []  # [class-data archive being written, or None] once a JVM of ours runs


def shutdown(timeout: float = 120) -> None:
    """Stop Spark and let the driver JVM this process started exit, waiting for it (at exit).

    Left to interpreter finalisation, py4j closes its sockets from `__del__` while native
    libraries are being torn down, which aborted `lakehouse run` at exit now and then ("terminate
    called without an active exception", exit code 134). The wait also lets the JVM finish
    writing the class-data archive (lakehouse/classdata.py), which is then published.
    """
    from pyspark import SparkContext

    archive = _SHUTDOWN[0] if _SHUTDOWN else None
    gateway = SparkContext._gateway
    proc = getattr(gateway, "proc", None) if gateway is not None else None
    try:
        if SparkContext._active_spark_context is not None:
            SparkContext._active_spark_context.stop()
        if gateway is not None:
            gateway.shutdown()
            SparkContext._gateway = None
            SparkContext._jvm = None
        if proc is not None and proc.poll() is None:
            if proc.stdin:
                proc.stdin.close()  # PySpark's gateway JVM exits when its stdin closes
            proc.wait(timeout=timeout)
    except Exception:  # noqa: BLE001 - nothing to report at exit; the JVM dies with us anyway
        pass
    if archive is not None:
        from lakehouse import classdata

        classdata.publish(*archive, proc.returncode if proc is not None else None)


def layer_conf(cfg: dict, layer: str, size: int | None) -> dict:
    """The SQL settings a layer runs with: `spark.layers.<layer>` always, then the small-run ones.

    Gold's layer settings turn adaptive execution off: its queries run over compact intermediates
    (user-days, users) in a few partitions, where adaptive execution adds one Spark job per shuffle
    stage and saved nothing (docs/performance.md "Gold without adaptive stages").
    """
    conf = dict(((cfg.get("spark") or {}).get("layers") or {}).get(layer) or {})
    conf.update(small_run_conf(cfg, layer, size) or {})
    return conf


def layer_settings(cfg: dict, lake: Lake, layer: str) -> dict:
    """The SQL settings `layer` ("bronze", "silver" or "gold") runs with on `lake` now
    (`layer_conf`): the small-run ones when silver's pending batches hold at most
    `spark.small_runs.silver_max_bytes` landed bytes, or silver.events at most `gold_max_events`
    rows (both from the ops tables and the Delta log, no Spark job)."""
    size = None
    if layer == "silver":
        size = ops.pending_bytes(lake, silver.done_batches(lake, "silver"))
    elif layer == "gold":
        size = ops.live_rows(lake, "silver.events")
    return layer_conf(cfg, layer, size)


def small_run_conf(cfg: dict, layer: str, size: int | None) -> dict | None:
    """The `spark.small_runs.conf` settings when a layer's input is small, else None.

    Small Spark queries cost mostly per-query overhead (planning, code generation, one job per
    adaptive stage or broadcast); interpreted evaluation without adaptive execution halves that,
    but makes silver's JSON parsing twice as slow at 2M lines (docs/performance.md "Small runs").
    `size` is the silver input's bytes or gold's silver event count; None = unknown (not small).
    """
    small = (cfg.get("spark") or {}).get("small_runs") or {}
    limit = small.get({"silver": "silver_max_bytes", "gold": "gold_max_events"}.get(layer, ""))
    if size is None or not limit or size > int(limit):
        return None
    return dict(small.get("conf") or {})
