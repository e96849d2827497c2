"""Pipeline benchmark: full build, one more day, nothing new; each beside a DuckDB peer in the same run.

    python -m bench.pipeline [--sizes 1m,2m] [--users N --days D] [--out bench/out] [--set KEY=VALUE ...]

Sizes: 1m = 5,000 users x 365 days, 2m = 10,000 x 365, 10m = 50,000 x 365 generated events
(seed 1). For each size the generator writes days+1 days once (cached under --out); the first
`days` days are landed and built from scratch (`lakehouse run` in a new process: JVM start
included), then the last day is landed and the whole `lakehouse run` timed again, then a run
that finds nothing new. Each is printed beside the DuckDB peer (bench/peer.py, also its own
process) run in the same bench: for the full build over the files landed then, for the other
two over every landed file (the peer recomputes everything from scratch). Spark jobs and
stages per layer come from the run's summary; each run's peak memory (its process and JVM together)
is sampled from /proc (`bench.peak`). Results go to `<out>/pipeline-<size>.json`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.peak import PeakRss

ROOT = Path(__file__).resolve().parent.parent
SIZES = {"1m": (5_000, 365), "2m": (10_000, 365), "10m": (50_000, 365)}
SEED = 1


@dataclass
class Measured:
    """One timed process: its wall seconds and what its output said."""

    seconds: float
    output: str = ""
    layers: dict = field(default_factory=dict)  # layer -> seconds, from the summary's "time:" line
    jobs: dict = field(default_factory=dict)  # layer -> Spark jobs, from its "spark:" line
    stages: dict = field(default_factory=dict)
    spark_start: float | None = None
    peer: dict = field(default_factory=dict)
    peak_rss: int | None = None  # bytes: the run's process and its children (the JVM), sampled


# ---------------------------------------------------------------- landing (generated once, cached)

def _count_lines(path: Path) -> int:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        return sum(1 for _ in fh)


def source(out: Path, users: int, days: int) -> tuple[Path, dict]:
    """The generated days+1 days (cached: generated once per users x days) and its line counts per day."""
    from lakehouse.generator import generate

    src = out / f"source-{users}x{days + 1}-seed{SEED}"
    marker = src / "_bench.json"
    if not marker.is_file():
        shutil.rmtree(src, ignore_errors=True)
        t0 = time.perf_counter()
        print(f"generating {users} users x {days + 1} days into {src} (once)", flush=True)
        generate(str(src), users=users, days=days + 1, seed=SEED)
        per_day = {d.name: sum(_count_lines(f) for f in d.iterdir() if f.is_file())
                   for d in sorted((src / "events").iterdir()) if d.is_dir()}
        marker.write_text(json.dumps({"lines_per_day": per_day, "generated_s": round(time.perf_counter() - t0, 1)}))
    return src, json.loads(marker.read_text())


def _link_tree(src: Path, dst: Path) -> None:
    """dst as a copy of src made of hard links (plain copies across file systems)."""
    def link(a, b):
        try:
            os.link(a, b)
        except OSError:
            shutil.copy2(a, b)
    shutil.copytree(src, dst, copy_function=link)


def land(src: Path, landing: Path, days: list[str]) -> None:
    """A fresh landing folder: the users files and the given days' event folders."""
    shutil.rmtree(landing, ignore_errors=True)
    _link_tree(src / "users", landing / "users")
    for day in days:
        _link_tree(src / "events" / day, landing / "events" / day)


# ---------------------------------------------------------------- the timed processes

_PAIR = re.compile(r"(\w+) (\d+) jobs / (\d+) stages")
_TIME = re.compile(r"(\w+) ([\d.]+)s")


def parse_summary(output: str) -> tuple[dict, dict, dict, float | None]:
    """Seconds per layer, jobs and stages per layer, and Spark start seconds from a run's output."""
    layers, jobs, stages, start = {}, {}, {}, None
    for line in output.splitlines():
        s = line.strip()
        if s.startswith("time: "):
            layers = {k: float(v) for k, v in _TIME.findall(s[len("time: "):])}
        elif s.startswith("spark: "):
            for layer, j, st in _PAIR.findall(s):
                if layer != "total":
                    jobs[layer], stages[layer] = int(j), int(st)
        elif s.startswith("spark ready in "):
            start = float(s.removeprefix("spark ready in ").rstrip("s"))
    return layers, jobs, stages, start


def lakehouse_run(landing: Path, lake: Path, sets: list[str], log: Path) -> Measured:
    """Time one `lakehouse run` process (plain-line output: it is not a terminal)."""
    cmd = [sys.executable, "-m", "lakehouse.cli", "run", "--landing", str(landing), "--lake", str(lake)]
    for s in sets:
        cmd += ["--set", s]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, stdin=subprocess.DEVNULL)
    with PeakRss(proc.pid) as memory:
        stdout, stderr = proc.communicate()
    seconds = time.perf_counter() - start
    log.write_text(stdout + "\n--- stderr ---\n" + stderr)
    if proc.returncode != 0:
        tail = (stderr.strip().splitlines() or ["(no output)"])[-1]
        raise SystemExit(f"lakehouse run failed ({log}): {tail}")
    layers, jobs, stages, spark_start = parse_summary(stdout)
    return Measured(seconds, stdout, layers, jobs, stages, spark_start, peak_rss=memory.peak)


def peer_run(landing: Path, cfg: dict, out: Path | None = None) -> Measured:
    """Time the DuckDB peer as its own process, over everything landed in `landing`."""
    cmd = [sys.executable, "-m", "bench.peer", "--landing", str(landing), "--timezone", cfg["timezone"],
           "--max-day", str(cfg["retention"]["max_day"])]
    for e in cfg["excluded_events"]:
        cmd += ["--exclude", e]
    if out is not None:
        cmd += ["--out", str(out)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, stdin=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"DuckDB peer failed: {proc.stderr.strip()[-2000:]}")
    return Measured(seconds, peer=json.loads(proc.stdout.strip().splitlines()[-1]))


def agreement(lake: Path, peer_out: Path) -> dict:
    """How many dates' DAU, WAU and MAU in gold.engagement_daily equal the peer's."""
    import pandas as pd
    from deltalake import DeltaTable

    cols = ["activity_date", "dau", "wau", "mau"]
    g = DeltaTable(str(lake / "gold" / "engagement_daily")).to_pandas()[cols]
    p = pd.read_parquet(peer_out / "engagement.parquet")[cols]
    for df in (g, p):
        df["activity_date"] = pd.to_datetime(df["activity_date"]).dt.date
    m = g.merge(p, on="activity_date", how="outer", suffixes=("_gold", "_peer"))
    same = sum(int((m[f"{c}_gold"] == m[f"{c}_peer"]).all()) for c in ("dau", "wau", "mau"))
    differ = int(((m["dau_gold"] != m["dau_peer"]) | (m["wau_gold"] != m["wau_peer"]) | (m["mau_gold"] != m["mau_peer"])).sum())
    return {"dates": len(m), "dates_differing": differ, "all_equal": same == 3 and differ == 0}


# ---------------------------------------------------------------- one size

def bench_size(label: str, users: int, days: int, out: Path, sets: list[str], cfg: dict) -> dict:
    src, meta = source(out, users, days)
    day_names = sorted(meta["lines_per_day"])
    first, extra = day_names[:-1], day_names[-1]
    work = out / f"run-{label}"
    landing, lake, logs = work / "landing", work / "lake", work / "logs"
    shutil.rmtree(work, ignore_errors=True)
    logs.mkdir(parents=True)
    land(src, landing, first)
    lines = sum(meta["lines_per_day"][d] for d in first)
    extra_lines = meta["lines_per_day"][extra]
    print(f"\n== {label}: {users} users x {days} days, {lines:,} event lines landed (+{extra_lines:,} one more day)", flush=True)

    steps: dict[str, tuple[Measured, Measured]] = {}
    print("full build ...", flush=True)
    full = lakehouse_run(landing, lake, sets, logs / "full.log")
    peer_full = peer_run(landing, cfg, work / "peer-full")
    steps["full build"] = (full, peer_full)
    checks = {"full build": agreement(lake, work / "peer-full")}

    _link_tree(src / "events" / extra, landing / "events" / extra)
    print("one more day ...", flush=True)
    inc = lakehouse_run(landing, lake, sets, logs / "one-more-day.log")
    peer_all = peer_run(landing, cfg, work / "peer-all")
    steps["one more day"] = (inc, peer_all)
    checks["one more day"] = agreement(lake, work / "peer-all")

    print("nothing new ...", flush=True)
    noop = lakehouse_run(landing, lake, sets, logs / "nothing-new.log")
    steps["nothing new"] = (noop, peer_all)

    result = {
        "size": label, "users": users, "days": days, "seed": SEED, "event_lines": lines, "one_more_day_lines": extra_lines,
        "measured_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "cpus": os.cpu_count(),
        "settings": sets, "peer_agrees_on_dau_wau_mau": checks, "steps": {},
    }
    for name, (run, peer) in steps.items():
        result["steps"][name] = {
            "seconds": round(run.seconds, 2), "peer_seconds": round(peer.seconds, 2),
            "peer_inside_seconds": peer.peer.get("seconds"), "ratio": round(run.seconds / peer.seconds, 2),
            "spark_start_seconds": run.spark_start, "layer_seconds": run.layers,
            "jobs": run.jobs, "stages": run.stages, "jobs_total": sum(run.jobs.values()),
            "stages_total": sum(run.stages.values()), "peer": peer.peer,
            "peak_rss_mb": None if run.peak_rss is None else round(run.peak_rss / 2**20),
        }
    (out / f"pipeline-{label}.json").write_text(json.dumps(result, indent=2))
    return result


def table(results: list[dict]) -> str:
    """The printed table: one row per size and step."""
    head = ("size", "step", "seconds", "peer s", "ratio", "bronze", "silver", "gold", "maint.", "jobs", "stages", "peak MB")
    rows = []
    for r in results:
        for step, s in r["steps"].items():
            per = [f"{s['jobs'].get(k, '-')}/{s['stages'].get(k, '-')}" if k in s["jobs"] else "-"
                   for k in ("bronze", "silver", "gold", "maintenance")]
            rows.append((r["size"], step, f"{s['seconds']:.1f}", f"{s['peer_seconds']:.1f}", f"{s['ratio']:.1f}x",
                         *per, str(s["jobs_total"]), str(s["stages_total"]),
                         "-" if s.get("peak_rss_mb") is None else str(s["peak_rss_mb"])))
    widths = [max(len(x) for x in col) for col in zip(head, *rows)]
    fmt = lambda row: "  ".join(v.rjust(w) if i >= 2 else v.ljust(w) for i, (v, w) in enumerate(zip(row, widths)))  # noqa: E731
    lines = [fmt(head), fmt(tuple("-" * w for w in widths))] + [fmt(r) for r in rows]
    lines.append("(per layer: Spark jobs/stages; peer = DuckDB over the same landed files, from scratch, its own process;")
    lines.append(" peak MB: resident memory of the run's processes, its JVM included, sampled every 0.25 s)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1m,2m", help=f"comma-separated, of {', '.join(SIZES)}")
    parser.add_argument("--users", type=int, help="a quick check at this many users (with --days), instead of --sizes")
    parser.add_argument("--days", type=int, help="days landed for the full build (one more is landed after it)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "out"))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="passed to every `lakehouse run`")
    args = parser.parse_args(argv)
    if (args.users is None) != (args.days is None):
        parser.error("--users and --days go together")
    if args.users is not None:
        if args.users < 1 or args.days < 2:
            parser.error("--users must be at least 1 and --days at least 2")
        plan = [(f"{args.users}x{args.days}", args.users, args.days)]
    else:
        names = [s.strip().lower() for s in args.sizes.split(",") if s.strip()]
        unknown = [n for n in names if n not in SIZES]
        if unknown or not names:
            parser.error(f"--sizes: expected some of {', '.join(SIZES)}, got {args.sizes!r}")
        plan = [(n, *SIZES[n]) for n in names]
    from lakehouse.config import load_config, parse_set

    cfg = load_config(overrides=parse_set(args.set))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = [bench_size(label, users, days, out, args.set, cfg) for label, users, days in plan]
    print()
    print(table(results))
    for r in results:
        agree = ", ".join(f"{k}: " + ("yes" if v["all_equal"] else f"NO ({v['dates_differing']} dates differ)")
                          for k, v in r["peer_agrees_on_dau_wau_mau"].items())
        print(f"{r['size']}: gold DAU/WAU/MAU equal to the peer's on every date? {agree}; -> {out / ('pipeline-' + r['size'] + '.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
