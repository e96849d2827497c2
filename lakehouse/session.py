"""The one Spark session builder used by jobs, the CLI and the test fixture."""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import subprocess
import sys
from typing import Iterable, Iterator, Mapping

from pyspark.sql import SparkSession

from lakehouse import objectstore
from lakehouse.config import conf_dir


class JavaMissingError(RuntimeError):
    """No usable Java 17 runtime: Spark cannot start."""


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


def _conf_value(value) -> str:
    """A YAML value as Spark expects it (booleans lower-case)."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def build_spark(cfg: dict, app_name: str | None = None, uris: Iterable[str | None] = ()) -> SparkSession:
    """Create (or reuse) the Spark session with Delta and the settings of `cfg['spark']`.

    When one of `uris` (the landing, the lake) is on S3 (`s3://`, `s3a://`), the session also gets
    hadoop-aws (`objectstore.spark_packages`: resolved by Ivy on first use, then its cached jar
    files) and the `fs.s3a.*` settings derived from the standard AWS variables.
    """
    java_version = check_java()
    # Python workers (UDFs, ML) run in this interpreter, not whatever `python3` is on the PATH.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark_cfg = cfg.get("spark", {})
    builder = (
        SparkSession.builder.appName(app_name or spark_cfg.get("app_name", "lakehouse"))
        .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
        .config("spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog")
        .config("spark.driver.memory", spark_cfg.get("driver_memory", "4g"))
    )
    # Under spark-submit the JVM (and its master and jars) already exist: only default them from Python.
    if not os.environ.get("PYSPARK_GATEWAY_PORT"):
        builder = builder.master(os.environ.get("LAKEHOUSE_SPARK_MASTER", spark_cfg.get("master", "local[2]")))
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
        builder = builder.config(key, _conf_value(value))
    java_opts = str((spark_cfg.get("conf") or {}).get("spark.driver.extraJavaOptions", ""))
    log_conf = conf_dir() / "log4j2.properties"
    if log_conf.is_file():
        java_opts = f"{java_opts} -Dlog4j2.configurationFile=file:{log_conf}".strip()
    from pyspark import SparkContext

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


@contextlib.contextmanager
def tuned(spark: SparkSession, conf: Mapping | None) -> Iterator[None]:
    """Run a block with extra SQL settings (None: none), restoring the previous values afterwards."""
    conf = {k: _conf_value(v) for k, v in (conf or {}).items()}
    saved = {k: spark.conf.get(k, None) for k in conf}
    for k, v in conf.items():
        spark.conf.set(k, v)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                spark.conf.unset(k)
            else:
                spark.conf.set(k, v)


def layer_conf(cfg: dict, layer: str, size: int | None) -> dict:
    """The SQL settings a layer runs with: `spark.layers.<layer>` always, then the small-run ones.

    Gold's layer settings turn adaptive execution off: its queries run over compact intermediates
    (user-days, users) in a few partitions, where adaptive execution adds one Spark job per shuffle
    stage and saved nothing (docs/performance.md "Gold without adaptive stages").
    """
    conf = dict(((cfg.get("spark") or {}).get("layers") or {}).get(layer) or {})
    conf.update(small_run_conf(cfg, layer, size) or {})
    return conf


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
