"""Watch mode: one Spark session that runs the pipeline on each new batch of landed files.

`lakehouse run --watch [--interval SECONDS]` starts Spark once and then, every `interval` seconds,
looks for landed files the lake has not ingested. A cycle that finds none writes nothing (not even
a run log row), unless a pending erasure's retention has passed: then it completes that erasure
(maintenance.complete_erasures, as every run does; docs/maintenance.md); a cycle that finds some runs bronze, silver and gold exactly as `lakehouse run`
does, with the same exactly-once bookkeeping (`ops.ingest_files`, `ops.progress`), so a SIGKILL in
the middle of a cycle loses and doubles nothing: the next start replays the planned batch.

SIGTERM or Ctrl-C (SIGINT) ends the loop between batches: a signal that arrives during a cycle
lets that cycle finish and publish, then the loop stops. A second signal during the same cycle
stops at once (the batch is then replayed by the next run, as after a kill).

Between cycles the session is trimmed so that it does not grow with the number of cycles: cached
frames are dropped, Delta's table-log cache is emptied (the next cycle reads each log afresh, as
a new process would), the scheduler forgets the jobs of SQL executions that have ended
(`release_finished_queries`) and the JVM collects garbage, which hands released local checkpoints
and broadcasts to Spark's cleaner (docs/performance.md, "Watch mode").
"""

from __future__ import annotations

import contextlib
import gc
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

from pyspark.sql import SparkSession

from lakehouse import bronze, maintenance, silver
from lakehouse.lock import LakeBusyError, lake_lock
from lakehouse.tables import Lake


@dataclass
class Cycle:
    """One watch cycle: when it ran, whether it found new files, how long it took, heap after it
    and how many finished SQL executions' jobs its trim released (`release_finished_queries`)."""

    number: int
    found: bool
    seconds: float
    heap_mb: float | None
    run_id: str | None = None
    status: str = "idle"
    released_queries: int = 0


@dataclass
class WatchResult:
    """Every cycle of a watch, and why it stopped."""

    cycles: list[Cycle] = field(default_factory=list)
    stopped_by: str = ""

    def processed(self) -> list[Cycle]:
        """The cycles that found and processed new files."""
        return [c for c in self.cycles if c.found]


class StopFlag:
    """Set by SIGTERM/SIGINT: the first asks the loop to stop after the current cycle, a second
    one during the same cycle raises KeyboardInterrupt at once."""

    def __init__(self) -> None:
        self.reason = ""
        self._event = threading.Event()
        self.busy = False

    def set(self, reason: str) -> None:
        if self._event.is_set() and self.busy:
            raise KeyboardInterrupt(reason)
        self.reason = self.reason or reason
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, seconds: float) -> bool:
        """Sleep up to `seconds`, waking early when the flag is set; returns whether it is set."""
        return self._event.wait(max(0.0, seconds))


@contextlib.contextmanager
def stop_on_signals(flag: StopFlag, progress: Callable[[str], None]) -> Iterator[None]:
    """Route SIGTERM and SIGINT to `flag` while the block runs (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _handler(signum, _frame):
        name = signal.Signals(signum).name
        if not flag.is_set():
            progress(f"watch: {name} received; stopping after the current cycle" if flag.busy
                     else f"watch: {name} received; stopping")
        flag.set(name)

    previous = {s: signal.signal(s, _handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def has_work(spark: SparkSession, lake: Lake, landing) -> bool:
    """Whether a run would do anything: files to ingest, or a layer behind bronze (a run that was
    killed after bronze). Reads only the file listing and the ops tables: no Spark job (a database
    source asks its database: one small query, `lakehouse.jdbc.plan`)."""
    if bronze.has_pending(spark, lake, landing):
        return True
    batches = bronze.committed_batches(lake)
    if not batches:
        return False
    silver_done = silver.done_batches(lake, "silver")
    return silver_done < batches[-1] or silver.done_batches(lake, "gold") < silver_done


def _complete_erasures(cfg: dict, lake: Lake, n: int, progress: Callable[[str], None]) -> None:
    """An idle cycle still completes the erasures whose retention has passed (a cycle that runs the
    pipeline does it in the run). Without a due erasure: one delta-rs read of ops.erasures, no lock."""

    if not maintenance.due_erasures(lake, maintenance.retention_hours(cfg)):
        return
    try:
        with lake_lock(lake.root, command="lakehouse run --watch"):
            note = maintenance.complete_erasures(cfg, lake.root)
    except LakeBusyError as exc:  # e.g. `lakehouse maintain` holds the lake: next cycle
        progress(f"watch: cycle {n}: {exc}")
        return
    for line in note.splitlines():
        progress(f"watch: cycle {n}: {line}")


def heap_used_mb(spark: SparkSession) -> float | None:
    """The driver JVM's used heap in MB after a full garbage collection (None when not reachable)."""
    try:
        jvm = spark.sparkContext._jvm
        jvm.java.lang.System.gc()
        rt = jvm.java.lang.Runtime.getRuntime()
        return round((rt.totalMemory() - rt.freeMemory()) / 2**20, 1)
    except Exception:  # noqa: BLE001 - e.g. Spark Connect: no JVM handle
        return None


def query_job_entries(spark: SparkSession) -> int | None:
    """How many SQL executions the DAGScheduler keeps jobs for (None when not reachable)."""
    try:
        return int(spark.sparkContext._jsc.sc().dagScheduler().activeQueryToJobs().size())
    except Exception:  # noqa: BLE001 - Spark Connect, or a Spark whose scheduler differs
        return None


def release_finished_queries(spark: SparkSession) -> int:
    """Have the DAGScheduler forget the jobs of SQL executions that have finished; how many.

    For stage retries within one query, the scheduler keeps each SQL execution's jobs
    (`activeQueryToJobs`, `jobIdToQueryExecutionId`) until the execution's end posts a clean-up.
    A job that is submitted under an execution id after that clean-up (from a thread that still
    carries the id in its local properties) is kept for the session's life, and with it its stages
    and their RDD lineage: plans, local checkpoints, Delta snapshots. Only executions that are no
    longer running are released (their ids are read before the running ones, and ids are never
    reused), through the scheduler's own clean-up event; anything else is left alone.
    """
    try:
        sc = spark.sparkContext
        ids = list(sc._jsc.sc().dagScheduler().activeQueryToJobs().keySet().toArray())
        sql_execution = sc._jvm.org.apache.spark.sql.execution.SQLExecution
        finished = [i for i in ids if sql_execution.getQueryExecution(i) is None]
        dag = sc._jsc.sc().dagScheduler()
        for i in finished:
            dag.cleanupQueryJobs(i)
        # The clean-ups run on the scheduler's event thread: wait (briefly) for them to be done.
        deadline = time.monotonic() + 5.0
        while finished and dag.activeQueryToJobs().size() > len(ids) - len(finished) and time.monotonic() < deadline:
            time.sleep(0.01)
        return len(finished)
    except Exception:  # noqa: BLE001 - Spark Connect, or a Spark whose scheduler differs: nothing to do
        return 0


def trim_session(spark: SparkSession) -> int:
    """Drop what a finished cycle leaves in the session: cached frames, Delta's log cache, the
    scheduler's bookkeeping of finished SQL executions (how many of those, returned) and Python's
    proxies of the run's JVM objects."""
    # PySpark's Java proxies sit in reference cycles: only Python's cycle collector lets go of them,
    # and until it does the JVM keeps every frame and plan they name (about 40 MB after a small run).
    gc.collect()
    spark.catalog.clearCache()
    with contextlib.suppress(Exception):
        spark.sparkContext._jvm.org.apache.spark.sql.delta.DeltaLog.clearCache()
    return release_finished_queries(spark)


def watch(spark: SparkSession, cfg: dict, landing, lake_root: str, interval: float = 60.0,
          max_cycles: int | None = None, progress: Callable[[str], None] = print,
          run: Callable | None = None, flag: StopFlag | None = None,
          on_cycle: Callable[[Cycle], None] | None = None) -> WatchResult:
    """Run the pipeline on each new batch of landed files until stopped.

    `landing`: the landing folder, or the sources to watch (`lakehouse.sources.from_run`).

    `interval`: seconds from the start of one cycle to the start of the next (a cycle that takes
    longer is followed at once). `max_cycles`: stop after that many cycles (None: until a signal).
    `run` is `pipeline.run` (injectable for tests); `on_cycle` is called with each finished cycle. Errors of a cycle end the watch with that error,
    after the cycle's run log row is written (as `lakehouse run` does), so a supervisor restarts it.
    """
    if interval <= 0:
        raise ValueError(f"--interval: must be a number of seconds above 0, got {interval}")

    if run is None:
        from lakehouse.pipeline import run as run
    lake = Lake(lake_root)
    flag = flag or StopFlag()
    result = WatchResult()
    where = landing if isinstance(landing, str) else ", ".join(s.describe() for s in landing)
    progress(f"watch: looking for new files in {where} every {interval:g}s (Ctrl-C or SIGTERM stops)")
    with stop_on_signals(flag, progress):
        n = 0
        while not flag.is_set() and (max_cycles is None or n < max_cycles):
            n += 1
            started = time.perf_counter()
            cycle = Cycle(n, found=False, seconds=0.0, heap_mb=None)
            flag.busy = True
            try:
                if has_work(spark, lake, landing):
                    cycle.found = True
                    try:
                        summary = run(spark, cfg, landing, lake_root, progress=progress)
                        cycle.run_id, cycle.status = summary.run_id, summary.status
                        for line in (getattr(summary, "erasures", "") or "").splitlines():
                            progress(f"watch: cycle {n}: {line}")
                    except LakeBusyError as exc:  # e.g. `lakehouse maintain` holds the lake: next cycle
                        cycle.status = "busy"
                        progress(f"watch: cycle {n}: {exc}")
                    cycle.released_queries = trim_session(spark)
                    cycle.heap_mb = heap_used_mb(spark)
                else:
                    _complete_erasures(cfg, lake, n, progress)
            finally:
                flag.busy = False
                cycle.seconds = time.perf_counter() - started
                result.cycles.append(cycle)
            if on_cycle is not None:
                on_cycle(cycle)
            if cycle.status == "success":
                progress(f"watch: cycle {n}: processed new files in {cycle.seconds:.1f}s (run {cycle.run_id}, "
                         f"heap {cycle.heap_mb} MB)")
            if max_cycles is not None and n >= max_cycles:
                result.stopped_by = f"{max_cycles} cycles"
                break
            flag.wait(interval - cycle.seconds)
        result.stopped_by = result.stopped_by or flag.reason or "stopped"
    progress(f"watch: stopped ({result.stopped_by}) after {len(result.cycles)} cycles, "
             f"{len(result.processed())} with new files")
    return result
