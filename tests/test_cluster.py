"""A standalone Spark cluster builds the same lake as local mode; a master that does not answer fails cleanly.

The `cluster` tests start a master and two workers on 127.0.0.1 with the pyspark install's own
`sbin/spark-daemon.sh` (free ports, pid, log and work folders of the test's own, one core and 1 GB
per worker), build a generated lake through the documented submit line (`lakehouse submit
--master spark://... jobs/pipeline.py`, run without an activated virtual environment) and one
with `lakehouse run` in local mode, and compare every table. They take minutes, so `make test`
leaves them out and `make test-cluster` runs them. The tests of the submit command line and of a
master that does not answer start no cluster and run in the fast suite.
"""

from __future__ import annotations

import collections
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from deltalake import DeltaTable

from lakehouse.generator import generate
from lakehouse.session import ClusterError, check_master, master_addresses
from lakehouse.submit import command, option_value, split_arguments, spark_home

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
EXECUTORS = ["--conf", "spark.executor.memory=1g", "--conf", "spark.executor.cores=1", "--conf", "spark.cores.max=2"]
RUN_TIMEOUT_S = 1800


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def plain_env(**extra: str) -> dict[str, str]:
    """The environment of a shell where the virtual environment was never activated: no .venv/bin on
    the PATH, no SPARK_HOME, no PYSPARK_* or VIRTUAL_ENV variables."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYSPARK_", "SPARK_", "VIRTUAL_ENV", "LAKEHOUSE_SPARK_MASTER"))}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                  if p and Path(p).resolve() != BIN.resolve())
    return {**env, **extra}


def tables_in(lake: Path) -> list[str]:
    """Every Delta table (a folder with a _delta_log) under a lake folder."""
    return sorted(str(p.parent.relative_to(lake)) for p in lake.rglob("_delta_log")) if lake.exists() else []


def canonical_rows(table_path: Path, drop: tuple[str, ...] = ()) -> tuple[list[str], list[str]]:
    """A table's columns and its rows as sorted JSON strings, doubles to 12 significant digits.

    Spark adds up doubles in the order partial results arrive, which depends on how the work is
    spread over executors: an average over a shuffle may differ in its last bit between a local
    run and a cluster run (seen: segment_summary.avg_revenue 7.029310774193548 / ...549).
    Everything else must be equal exactly.
    """
    table = DeltaTable(str(table_path)).to_pyarrow_table()
    table = table.drop_columns([c for c in drop if c in table.column_names])
    rows = [json.dumps({k: float(f"{v:.12g}") if isinstance(v, float) else v for k, v in r.items()},
                       sort_keys=True, default=repr) for r in table.to_pylist()]
    return table.column_names, sorted(rows)


def assert_same_table(ref: Path, got: Path, name: str, drop: tuple[str, ...] = ()) -> int:
    """Fail naming the rows that differ unless table `name` (layer/table) holds the same rows in both lakes."""
    ref_cols, ref_rows = canonical_rows(ref / name, drop)
    got_cols, got_rows = canonical_rows(got / name, drop)
    assert got_cols == ref_cols, f"{name}: columns differ"
    if got_rows != ref_rows:
        missing = collections.Counter(ref_rows) - collections.Counter(got_rows)
        extra = collections.Counter(got_rows) - collections.Counter(ref_rows)
        pytest.fail(f"{name}: {len(got_rows)} rows vs {len(ref_rows)} in local mode; missing {sum(missing.values())}, "
                    f"e.g. {list(missing)[:2]}; extra {sum(extra.values())}, e.g. {list(extra)[:2]}")
    return len(ref_rows)


class Cluster:
    """A master and two workers started with pyspark's sbin/spark-daemon.sh; `stop` ends every one of them."""

    MASTER = "org.apache.spark.deploy.master.Master"
    WORKER = "org.apache.spark.deploy.worker.Worker"

    def __init__(self, root: Path):
        self.root = root
        self.port, self.ui_port = free_port(), free_port()
        self.url = f"spark://127.0.0.1:{self.port}"
        self.daemon = str(spark_home() / "sbin" / "spark-daemon.sh")
        for sub in ("pids", "logs", "conf", "local", "work1", "work2"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        self.env = plain_env(
            SPARK_HOME=str(spark_home()), SPARK_PID_DIR=str(root / "pids"), SPARK_LOG_DIR=str(root / "logs"),
            SPARK_CONF_DIR=str(root / "conf"), SPARK_LOCAL_DIRS=str(root / "local"),
            SPARK_IDENT_STRING=f"lakehouse-test-{os.getpid()}", SPARK_DAEMON_MEMORY="512m")
        self.started: list[tuple[str, str]] = []

    def _daemon(self, action: str, cls: str, instance: str, *args: str) -> None:
        subprocess.run(["bash", self.daemon, action, cls, instance, *args], env=self.env, check=True,
                       capture_output=True, text=True, timeout=120)

    def start(self) -> "Cluster":
        self.started.append((self.MASTER, "1"))
        self._daemon("start", self.MASTER, "1", "--host", "127.0.0.1", "--port", str(self.port),
                     "--webui-port", str(self.ui_port))
        for n in ("1", "2"):
            self.started.append((self.WORKER, n))
            self._daemon("start", self.WORKER, n, "--host", "127.0.0.1", "--webui-port", str(free_port()),
                         "--cores", "1", "--memory", "1g", "--work-dir", str(self.root / f"work{n}"), self.url)
        return self

    def state(self) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.ui_port}/json/", timeout=10) as resp:
            return json.load(resp)

    def wait_for_workers(self, count: int = 2, timeout: float = 300) -> None:
        deadline, seen = time.monotonic() + timeout, None
        while time.monotonic() < deadline:
            try:
                seen = self.state()
                if sum(w.get("state") == "ALIVE" for w in seen.get("workers", [])) >= count:
                    return
            except OSError:
                pass
            time.sleep(1)
        logs = "\n".join(p.read_text(errors="replace")[-1500:] for p in sorted((self.root / "logs").glob("*.out")))
        pytest.fail(f"{count} workers did not register with {self.url} in {timeout:.0f}s: {seen}\n{logs}")

    def pids(self) -> list[int]:
        return [int(p.read_text().strip()) for p in (self.root / "pids").glob("*.pid") if p.read_text().strip()]

    def stop(self) -> None:
        """Stop the workers, then the master; kill by pid whatever is left (also after a failed start)."""
        pids = self.pids()
        for cls, n in reversed(self.started):
            try:
                self._daemon("stop", cls, n)
            except (subprocess.SubprocessError, OSError):
                pass
        deadline = time.monotonic() + 30
        for pid in pids:
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.5)
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def submit(*args: str, timeout: float = RUN_TIMEOUT_S) -> subprocess.CompletedProcess:
    """`.venv/bin/lakehouse submit ...` from the checkout, as documented, in a shell without the venv."""
    return subprocess.run([str(BIN / "lakehouse"), "submit", *args], cwd=ROOT, env=plain_env(),
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def landing(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cluster-landing")
    generate(str(root / "landing"), users=150, days=20, seed=11)
    return root / "landing"


@pytest.fixture(scope="module")
def local_lake(landing, tmp_path_factory) -> Path:
    """The lake `lakehouse run` builds in local mode (the reference)."""
    lake = tmp_path_factory.mktemp("local") / "lake"
    proc = subprocess.run([str(BIN / "lakehouse"), "run", "--landing", str(landing), "--lake", str(lake),
                           "--set", "spark.driver_memory=2g"],
                          cwd=ROOT, env=plain_env(), capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return lake


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Master + two one-core workers on 127.0.0.1; stopped (every daemon, by pid) whatever the tests did."""
    spark_cluster = Cluster(tmp_path_factory.mktemp("spark-cluster"))
    try:
        spark_cluster.start().wait_for_workers()
        yield spark_cluster
    finally:
        spark_cluster.stop()
    assert not [p for p in spark_cluster.pids() if _alive(p)], "a Spark daemon survived stop"


@pytest.mark.cluster
@pytest.mark.e2e
def test_a_standalone_cluster_builds_the_same_lake_as_local_mode(local_lake, landing, cluster, tmp_path):
    lake = tmp_path / "lake"
    proc = submit("--master", cluster.url, "--driver-memory", "2g", *EXECUTORS,
                  "jobs/pipeline.py", "--landing", str(landing), "--lake", str(lake))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "success" in proc.stdout
    # The job ran on the cluster: one application, with an executor on each worker.
    apps = cluster.state().get("completedapps", []) + cluster.state().get("activeapps", [])
    assert [a["name"] for a in apps] == ["lakehouse-pipeline"]
    for n in ("1", "2"):
        assert list((cluster.root / f"work{n}").glob("app-*/*/stderr")), f"no executor ran on worker {n}"
    tables = tables_in(local_lake)
    assert tables_in(lake) == tables and len([t for t in tables if t.startswith("gold/")]) > 20
    tables = [t for t in tables if not t.startswith("ops/")]  # run ids and times: a log of each run, not data
    rows = {name: assert_same_table(local_lake, lake, name, drop=("ingested_at",)) for name in tables}
    assert rows["gold/engagement_daily"] == 20 and rows["gold/users"] > 0 and rows["bronze/events"] > 0


@pytest.mark.cluster
@pytest.mark.e2e
def test_executors_without_the_named_python_fail_in_one_line_before_any_table(landing, cluster, tmp_path):
    lake = tmp_path / "lake"
    proc = submit("--master", cluster.url, "--driver-memory", "1g", *EXECUTORS,
                  "--conf", f"spark.pyspark.python={tmp_path / 'no-such-python'}",
                  "jobs/pipeline.py", "--landing", str(landing), "--lake", str(lake), timeout=600)
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-3000:]
    # The job's one line (spark-submit passes the Python driver's stderr on to its stdout); Spark's
    # own log has its one ERROR line about the failed task on stderr, and no stack trace.
    errors = [line for line in proc.stdout.splitlines() if line.strip()]
    assert errors == [f"lakehouse job: error: executors of {cluster.url} cannot run Python {tmp_path / 'no-such-python'} "
                      f"(not found on a worker): install the same Python environment (with the lakehouse package) at "
                      f"that path on every worker, or name it with --conf spark.pyspark.python=PATH"], proc.stdout
    assert "Traceback" not in proc.stderr and "\tat " not in proc.stderr, proc.stderr[-3000:]
    assert tables_in(lake) == []


def test_a_master_that_does_not_answer_fails_the_submitted_job_in_one_line_and_writes_nothing(tmp_path):
    port = free_port()  # nothing listens there
    landing = tmp_path / "landing"
    generate(str(landing), users=5, days=2, seed=1)
    started = time.monotonic()
    proc = submit("--master", f"spark://127.0.0.1:{port}", "jobs/pipeline.py", "--landing", str(landing),
                  "--lake", str(tmp_path / "lake"), timeout=300)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stdout == ""
    assert proc.stderr.splitlines() == [f"lakehouse submit: error: Spark master spark://127.0.0.1:{port} does not answer "
                      f"(Connection refused): start the master (docs/deploy.md, standalone cluster) or fix "
                      f"--master / spark.master (host and port, 7077 by default)"]
    assert time.monotonic() - started < 30  # checked before spark-submit starts a JVM
    assert not (tmp_path / "lake").exists()


def test_a_job_under_a_plain_spark_submit_checks_the_master_before_any_table(cfg, tmp_path):
    """spark-submit by hand (not through `lakehouse submit`): the job's session builder does the check."""
    port = free_port()
    cmd, env = command(cfg, ["--master", f"spark://127.0.0.1:{port}", "--driver-memory", "1g", "jobs/pipeline.py",
                             "--landing", str(tmp_path / "landing"), "--lake", str(tmp_path / "lake")])
    proc = subprocess.run(cmd, cwd=ROOT, env={**plain_env(), **{k: env[k] for k in ("SPARK_HOME", "PYSPARK_PYTHON")}},
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    # spark-submit passes the Python driver's stderr on to its own stdout.
    assert [line for line in proc.stdout.splitlines() if line.strip()] == [
        f"lakehouse job: error: Spark master spark://127.0.0.1:{port} does not answer (Connection refused): start "
        f"the master (docs/deploy.md, standalone cluster) or fix --master / spark.master (host and port, 7077 by default)"]
    assert "Traceback" not in proc.stderr and not (tmp_path / "lake").exists()


def test_lakehouse_run_on_a_master_that_does_not_answer_fails_before_spark_starts(tmp_path):
    port = free_port()
    landing = tmp_path / "landing"
    generate(str(landing), users=5, days=2, seed=1)
    proc = subprocess.run([str(BIN / "lakehouse"), "run", "--landing", str(landing), "--lake", str(tmp_path / "lake"),
                           "--set", f"spark.master=spark://127.0.0.1:{port}"],
                          cwd=ROOT, env=plain_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (f"lakehouse run: error: Spark master spark://127.0.0.1:{port} does not answer "
                                   f"(Connection refused): start the master (docs/deploy.md, standalone cluster) "
                                   f"or fix --master / spark.master (host and port, 7077 by default)")
    assert not (tmp_path / "lake").exists()


def test_master_urls_are_parsed_and_checked():
    assert master_addresses("local[2]") == []
    assert master_addresses("spark://a:7077,b:7078") == [("a", 7077), ("b", 7078)]
    with pytest.raises(ClusterError, match="expected spark://HOST:PORT"):
        master_addresses("spark://a")
    check_master("local[2]")  # nothing to check
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        check_master(f"spark://127.0.0.1:{free_port()},127.0.0.1:{port}")  # one of two answers: fine
    with pytest.raises(ClusterError, match=f"spark://127.0.0.1:{port} does not answer"):
        check_master(f"spark://127.0.0.1:{port}")


def test_the_submit_line_fills_in_python_jars_and_driver_settings_it_does_not_give(cfg):
    cmd, env = command(cfg, ["--master", "spark://h:7077", "jobs/pipeline.py", "--lake", "L"], python="/py")
    assert cmd[0] == str(spark_home() / "bin" / "spark-submit") and env["SPARK_HOME"] == str(spark_home())
    assert env["PYSPARK_PYTHON"] == env["PYSPARK_DRIVER_PYTHON"] == "/py"
    assert cmd[-3:] == ["jobs/pipeline.py", "--lake", "L"] and cmd.count("--master") == 1
    for setting in ("spark.pyspark.python=/py", "spark.pyspark.driver.python=/py"):
        assert cmd[cmd.index(setting) - 1] == "--conf"
    assert "--jars" in cmd or "--packages" in cmd
    assert cmd[cmd.index("--driver-memory") + 1] == cfg["spark"]["driver_memory"]
    java = next(c for c in cmd if c.startswith("spark.driver.extraJavaOptions="))
    assert "log4j2.configurationFile" in java and "-XX:-DontCompileHugeMethods" in java
    # What the command line gives is kept, and not given twice.
    mine = ["--jars", "/x.jar", "--driver-memory", "1g", "--conf", "spark.pyspark.python=/other", "--verbose",
            "jobs/gold.py", "--lake", "L", "--conf", "dev"]
    cmd, _ = command(cfg, mine, python="/py")
    assert cmd.count("--jars") == 1 and "--packages" not in cmd and cmd.count("--driver-memory") == 1
    assert "spark.pyspark.python=/py" not in cmd and "spark.pyspark.driver.python=/py" in cmd
    assert cmd[-5:] == ["jobs/gold.py", "--lake", "L", "--conf", "dev"]  # the job's own --conf is the job's
    assert split_arguments(["--conf=a=b", "--master", "m", "app.py", "-x"]) == (["--conf=a=b", "--master", "m"],
                                                                                ["app.py", "-x"])
    assert option_value(["--master", "a", "--master=b", "--jars", "j"], "--master") == "b"

