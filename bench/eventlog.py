"""Where a run's Spark time goes, from Spark's own event log: jobs in order, their stages and task time.

    lakehouse run ... --set spark.conf.spark.eventLog.enabled=true \\
        --set spark.conf.spark.eventLog.dir=/tmp/ev --set spark.conf.spark.eventLog.compress=false
    python -m bench.eventlog /tmp/ev/<application folder or file> [--stages-over SECONDS] [--top N]

Prints each job (start offset, wall seconds, stages run/planned, tasks, call site), the stages of
jobs longer than `--stages-over`, the jobs with the most task time (run and CPU seconds summed over
their tasks) and the gaps between jobs longer than a second: time the driver spent planning,
compiling or in Python, with no Spark job running.
"""

from __future__ import annotations

import argparse
import collections
import json
from pathlib import Path


def events(path: Path):
    """The event log's JSON events (a file, or every file of an event-log folder, uncompressed)."""
    files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith((".", "appstatus"))) \
        if path.is_dir() else [path]
    for f in files:
        if f.suffix in (".zstd", ".lz4", ".snappy", ".lzf"):
            raise SystemExit(f"{f}: compressed event log; run with --set spark.conf.spark.eventLog.compress=false")
        with f.open(encoding="utf-8") as fh:
            for line in fh:
                yield json.loads(line)


def summarise(path: Path, stages_over: float = 1e9, top: int = 10) -> str:
    jobs: dict[int, dict] = {}
    stages: dict[int, dict] = {}
    stage_job: dict[int, int] = {}
    run, cpu = collections.Counter(), collections.Counter()
    queries: dict[str, str] = {}  # SQL execution id -> its description (a job's call site when it has none)
    for e in events(path):
        kind = e["Event"]
        if kind == "SparkListenerJobStart":
            props = e.get("Properties") or {}
            jobs[e["Job ID"]] = {"start": e["Submission Time"], "end": e["Submission Time"],
                                 "stages": list(e["Stage IDs"]),
                                 "what": props.get("spark.job.description") or props.get("callSite.short")
                                 or queries.get(str(props.get("spark.sql.execution.id")), "")}
            stage_job.update({s: e["Job ID"] for s in e["Stage IDs"]})
        elif kind.endswith("SparkListenerSQLExecutionStart"):
            queries[str(e["executionId"])] = e.get("description") or ""
        elif kind == "SparkListenerJobEnd" and e["Job ID"] in jobs:
            jobs[e["Job ID"]]["end"] = e["Completion Time"]
        elif kind == "SparkListenerStageCompleted":
            s = e["Stage Info"]
            stages[s["Stage ID"]] = {"tasks": s["Number of Tasks"], "start": s.get("Submission Time") or 0,
                                     "end": s.get("Completion Time") or 0, "name": s["Stage Name"]}
        elif kind == "SparkListenerTaskEnd":
            m = e.get("Task Metrics") or {}
            job = stage_job.get(e["Stage ID"])
            run[job] += m.get("Executor Run Time", 0) / 1000
            cpu[job] += m.get("Executor CPU Time", 0) / 1e9
    if not jobs:
        return "no Spark jobs in this event log"
    t0 = min(j["start"] for j in jobs.values())
    lines, last_end = [], t0
    for jid in sorted(jobs):
        j = jobs[jid]
        if j["start"] - last_end > 1000:
            lines.append(f"          ... {(j['start'] - last_end) / 1000:.1f} s with no job running")
        last_end = max(last_end, j["end"])
        ran = [s for s in j["stages"] if s in stages]
        wall = (j["end"] - j["start"]) / 1000
        lines.append(f"job {jid:4d} @{(j['start'] - t0) / 1000:7.1f}s {wall:6.1f}s  stages {len(ran)}/{len(j['stages'])}"
                     f"  tasks {sum(stages[s]['tasks'] for s in ran):4d}  {j['what'][:80]}")
        if wall >= stages_over:
            for s in ran:
                st = stages[s]
                lines.append(f"      stage {s}: {(st['end'] - st['start']) / 1000:6.2f}s  tasks {st['tasks']}")
    span = (max(j["end"] for j in jobs.values()) - t0) / 1000
    lines.append(f"{len(jobs)} jobs, {len(stages)} stages over {span:.1f} s; task time {sum(run.values()):.1f} s "
                 f"(CPU {sum(cpu.values()):.1f} s)")
    lines.append("most task time:")
    for jid, seconds in run.most_common(top):
        lines.append(f"  job {jid}: {seconds:.1f} s run, {cpu[jid]:.1f} s CPU, {jobs[jid]['what'][:70]}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path, help="an event-log file or an application's event-log folder")
    parser.add_argument("--stages-over", type=float, default=1e9, metavar="SECONDS",
                        help="list the stages of jobs that took at least this long")
    parser.add_argument("--top", type=int, default=10, help="jobs listed by task time")
    args = parser.parse_args(argv)
    if not args.path.exists():
        raise SystemExit(f"{args.path}: no such event log")
    print(summarise(args.path, args.stages_over, args.top))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
