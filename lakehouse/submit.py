"""`lakehouse submit`: spark-submit with this environment's Spark, Python and Delta jars.

`.venv/bin/spark-submit` (the pyspark wheel's script) only works in an activated virtual
environment or with SPARK_HOME and PYSPARK_PYTHON set: without them it looks for Spark with
whatever `python3` is on the PATH and stops with "Could not find valid SPARK_HOME". Settings
that `build_spark` applies once Python runs come too late under spark-submit (the driver JVM
exists by then): the Delta jars on the driver's class path, driver memory and JVM options.
`lakehouse submit [spark-submit options] APP [app arguments]` runs pyspark's own spark-submit
with them filled in, each only where the command line does not give it:

- SPARK_HOME = the pyspark install; the driver runs this interpreter (`spark.pyspark.driver.python`);
- executors' Python workers run `spark.pyspark.python`, by default this interpreter's path, which
  must then exist on every worker (docs/deploy.md, standalone cluster);
- `--jars` the two Delta jars from the Ivy cache (not `--packages`, which makes every executor
  resolve and fetch the whole dependency tree); `--packages` with the configured excludes until
  the cache holds them;
- `--master` from `spark.master` (LAKEHOUSE_SPARK_MASTER), `--driver-memory` from
  `spark.driver_memory`, and the configured driver JVM options with the project's log4j settings.

A `spark://` master that does not answer stops it before spark-submit starts (one line, exit 2);
the job's `build_spark` checks the same under a plain spark-submit.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from lakehouse.config import conf_dir, load_config
from lakehouse.session import cached_delta_jars, check_master

NO_VALUE = {"--verbose", "-v", "--supervise", "--help", "-h", "--version", "--usage-error"}


def spark_home() -> Path:
    """The Spark distribution inside the pyspark package (bin/, sbin/, jars/)."""
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def split_arguments(args: list[str]) -> tuple[list[str], list[str]]:
    """(spark-submit's options, [application, *its arguments]): options end at the first bare word."""
    i = 0
    while i < len(args) and args[i].startswith("-"):
        i += 1 if ("=" in args[i] and args[i].startswith("--")) or args[i] in NO_VALUE else 2
    return args[:i], args[i:]


def given(options: list[str]) -> tuple[set[str], set[str]]:
    """(option names, `--conf` keys) present among spark-submit's options."""
    names, conf_keys = set(), set()
    for i, opt in enumerate(options):
        if not opt.startswith("-"):
            continue
        name, _, inline = opt.partition("=")
        names.add(name)
        if name in ("--conf", "-c"):
            value = inline if inline else (options[i + 1] if i + 1 < len(options) else "")
            conf_keys.add(value.partition("=")[0])
    return names, conf_keys


def option_value(options: list[str], name: str) -> str:
    """The value of spark-submit option `name` (`--name VALUE` or `--name=VALUE`; the last one wins), else ""."""
    value = ""
    for i, opt in enumerate(options):
        if opt == name and i + 1 < len(options):
            value = options[i + 1]
        elif opt.startswith(name + "="):
            value = opt.partition("=")[2]
    return value


def command(cfg: dict, args: list[str], python: str | None = None) -> tuple[list[str], dict[str, str]]:
    """The spark-submit command and its environment for the user's spark-submit arguments `args`."""
    python = python or sys.executable
    spark_cfg = cfg.get("spark") or {}
    options, app = split_arguments(args)
    names, conf_keys = given(options)
    added: list[str] = []
    if "--master" not in names:
        added += ["--master", os.environ.get("LAKEHOUSE_SPARK_MASTER", str(spark_cfg.get("master", "local[2]")))]
    if "--driver-memory" not in names and "spark.driver.memory" not in conf_keys:
        added += ["--driver-memory", str(spark_cfg.get("driver_memory", "2g"))]
    if not names & {"--jars", "--packages"} and not conf_keys & {"spark.jars", "spark.jars.packages"}:
        jars = spark_cfg.get("jars") or cached_delta_jars(spark_cfg.get("packages", ""))
        if jars:
            added += ["--jars", str(jars)]
        elif spark_cfg.get("packages"):
            added += ["--packages", str(spark_cfg["packages"])]
            excludes = "".join(str(spark_cfg.get("package_excludes") or "").split())
            if excludes:
                added += ["--exclude-packages", excludes]
    if "spark.pyspark.python" not in conf_keys:
        added += ["--conf", f"spark.pyspark.python={python}"]
    if "spark.pyspark.driver.python" not in conf_keys:
        added += ["--conf", f"spark.pyspark.driver.python={python}"]
    if "--driver-java-options" not in names and "spark.driver.extraJavaOptions" not in conf_keys:
        java_opts = str((spark_cfg.get("conf") or {}).get("spark.driver.extraJavaOptions", ""))
        log_conf = conf_dir() / "log4j2.properties"
        if log_conf.is_file():
            java_opts = f"{java_opts} -Dlog4j2.configurationFile=file:{log_conf}".strip()
        if java_opts:
            added += ["--conf", f"spark.driver.extraJavaOptions={java_opts}"]
    home = spark_home()
    env = dict(os.environ, SPARK_HOME=str(home), PYSPARK_PYTHON=python, PYSPARK_DRIVER_PYTHON=python)
    return [str(home / "bin" / "spark-submit"), *added, *options, *app], env


USAGE = ("usage: lakehouse submit [spark-submit options] APP.py [app arguments]\n"
         "  e.g. lakehouse submit --master spark://HOST:7077 jobs/pipeline.py --landing DIR --lake DIR\n"
         "  spark-submit with this environment's Spark, Python and Delta jars (docs/deploy.md)")


def main(args: list[str]) -> int:
    """Run spark-submit with `args`, replacing this process; without an application, the usage (exit 2)."""
    _, app = split_arguments(args)
    if not app:
        wanted = bool({"-h", "--help"} & set(args))
        print(USAGE, file=sys.stdout if wanted else sys.stderr)
        return 0 if wanted else 2
    cmd, env = command(load_config(), args)
    check_master(option_value(split_arguments(cmd[1:])[0], "--master"))  # one line, before any JVM starts
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(cmd[0], cmd, env)
    return 0  # not reached: execve replaces the process
