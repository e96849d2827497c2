"""How many Spark jobs and stages a session has run so far, to count them per pipeline layer.

Spark numbers jobs and stages from 0 in the order it creates them, so the next ids are the
counts so far. They are read from the driver's DAGScheduler (exact, and not bounded by
`spark.ui.retainedJobs` the way the UI's job list is); when that is not reachable (a future
Spark renaming its internals) the public status tracker's newest retained job gives the same
ids a moment later (its listener is asynchronous); a session without a SparkContext (Spark
Connect) gives None. Stages count every stage Spark created, including the ones it skipped
because their shuffle output already existed.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import SparkSession


@dataclass(frozen=True)
class Counts:
    """Jobs and stages created in a session up to some moment."""

    jobs: int
    stages: int

    def __sub__(self, other: "Counts") -> "Counts":
        return Counts(self.jobs - other.jobs, self.stages - other.stages)


def _next_id(counter) -> int:
    # An AtomicInteger: py4j hands it over as a Python int (a java.lang.Number); a proxy has get().
    return int(counter) if isinstance(counter, int) else int(counter.get())


def _from_scheduler(sc) -> Counts:
    dag = sc._jsc.sc().dagScheduler()
    return Counts(_next_id(dag.nextJobId()), _next_id(dag.nextStageId()))


def _from_status_tracker(sc) -> Counts:
    tracker = sc.statusTracker()
    jobs = list(tracker.getJobIdsForGroup(None))
    stages = [s for j in jobs if (info := tracker.getJobInfo(j)) is not None for s in info.stageIds]
    stages += list(tracker.getActiveStageIds())
    return Counts(max(jobs, default=-1) + 1, max(stages, default=-1) + 1)


def counts(spark: SparkSession | None) -> Counts | None:
    """Jobs and stages the session's SparkContext has created so far; None when it cannot tell."""
    if spark is None:
        return None
    try:
        sc = spark.sparkContext
    except Exception:  # noqa: BLE001 - Spark Connect sessions have no SparkContext
        return None
    for read in (_from_scheduler, _from_status_tracker):
        try:
            return read(sc)
        except Exception:  # noqa: BLE001 - internals differ between Spark versions and deployments
            continue
    return None


def since(spark: SparkSession | None, before: Counts | None) -> Counts | None:
    """Jobs and stages created since `before` (None when either end is unknown)."""
    now = counts(spark)
    return None if now is None or before is None else now - before
