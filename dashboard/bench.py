"""Dashboard benchmark: server-side callback time per page/filter combination and page draw time.

    python -m dashboard.bench --lake DIR [--quick] [--no-browser] [--loads 3]

Callbacks are timed by calling each page's callback functions directly (the
data + figure work of a request) plus the JSON encoding Dash does, with the
filtered-result cache cleared before each call (tables and indexes stay
loaded, as in a running server). Page draw time is measured in headless
Chromium from navigation start until every callback has answered and every
graph is drawn.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import time
from collections import defaultdict

import numpy as np
from plotly.io.json import to_json_plotly

from . import data
from .app import create_app, warm_up
from .filters import Filters

TARGET_CALLBACK_MS = 100.0
TARGET_DRAW_MS = 1500.0


def _encode(out) -> int:
    """Encode a callback's return value as Dash does (plotly's JSON encoder); returns the size."""
    return len(to_json_plotly(list(out) if isinstance(out, tuple) else out))


def filter_combinations(quick: bool = False) -> list[Filters]:
    """Representative filter selections: presets x granularities x dimension filters."""
    opts = data.filter_options()

    def first(dim):
        vals = [v for v in opts.get(dim, []) if v != "unknown"]
        return (vals[0],) if vals else ()

    presets = ["30d", "all"] if quick else ["7d", "30d", "90d", "month", "all"]
    grains = ["day", "month"] if quick else ["day", "week", "month"]
    dims = [{}, {"country": first("country")}, {"device": first("device")},
            {"gender": first("gender"), "age_group": first("age_group")}]
    if not quick:
        dims.append({"country": first("country"), "device": first("device"), "gender": first("gender"),
                     "age_group": first("age_group")})
    return [Filters(preset=p, grain=g, **d) for p, g, d in itertools.product(presets, grains, dims)]


def _filter_args(f: Filters, theme: str) -> tuple:
    lo, hi = data.resolve(f)
    return (lo.isoformat(), hi.isoformat(), f.grain, list(f.country), list(f.device), list(f.gender),
            list(f.age_group), theme)


def callback_cases(quick: bool = False):
    """(name, function, args) for every page callback and filter combination."""
    mods = {name.split(".")[-1]: mod for name, mod in sys.modules.items() if name.startswith("pages.")}
    combos = filter_combinations(quick)
    cases = []
    for i, f in enumerate(combos):
        theme = "dark" if i % 2 else "light"
        a = _filter_args(f, theme)
        simple = [("overview", "update_kpis"), ("overview", "update_charts"), ("engagement", "update_engagement"),
                  ("engagement", "update_lifecycle"), ("loyalty", "update_loyalty"), ("loyalty", "update_balances"),
                  ("revenue", "update_revenue"), ("revenue", "update_split"), ("funnel", "update_funnel"),
                  ("sessions", "update_sessions"), ("sessions", "update_content"),
                  ("segments", "update_segments"), ("segments", "update_clusters"), ("retention", "update_kpis")]
        for page, fn in simple:
            if page in mods:
                cases.append((f"{page}.{fn}", getattr(mods[page], fn), a))
        if "demographics" in mods:
            cases.append(("demographics.update_demographics", mods["demographics"].update_demographics,
                          a + ("active_users",)))
        if "funnel" in mods:
            cases.append(("funnel.update_trend", mods["funnel"].update_trend, a + (bool(i % 2),)))
        if "retention" in mods:
            cohort = "week" if i % 3 == 0 else "day"
            cases.append(("retention.update_cohorts", mods["retention"].update_cohorts,
                          a + (cohort, "rate", "exact" if i % 2 else "unbounded")))
        if "users" in mods:
            cases.append(("users.update_table", mods["users"].update_table,
                          (a[0], a[1], a[3], a[5], a[6], "u00" if i % 2 else "", None, None, i % 3,
                           [{"column_id": "revenue", "direction": "desc"}] if i % 2 else [])))
    users = data.users_frame()
    if "users" in mods and users is not None and len(users):
        for i, uid in enumerate(users["user_id"].iloc[:: max(1, len(users) // 10)].head(10)):
            f = combos[i % len(combos)]
            a = _filter_args(f, "light")
            cases.append(("users.show_profile", mods["users"].show_profile, (uid, a[0], a[1], "light")))
    if "sql_lab" in mods:
        for q in ["SELECT count(*) FROM gold.users", "SELECT * FROM engagement_daily ORDER BY activity_date",
                  "SELECT country, count(DISTINCT user_id) AS users FROM gold.user_activity_daily GROUP BY 1",
                  "SELECT * FROM read_csv('/etc/passwd')"]:
            cases.append(("sql_lab.run", mods["sql_lab"].run, (1, q)))
    if "health" in mods:
        for i in range(5):
            cases.append(("health.update_health", mods["health"].update_health, (i, "light")))
    return cases


def bench_callbacks(quick: bool = False) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Run every case once (result cache cleared before each); wall and CPU ms per callback name.

    CPU time (time.thread_time) is what the callback costs on an idle core: on a busy machine
    the wall time also counts waiting for a CPU.
    """
    wall: dict[str, list[float]] = defaultdict(list)
    cpu: dict[str, list[float]] = defaultdict(list)
    for name, fn, args in callback_cases(quick):
        data.clear_result_cache()
        t0, c0 = time.perf_counter(), time.thread_time()
        out = fn(*args)
        _encode(out)
        wall[name].append((time.perf_counter() - t0) * 1000)
        cpu[name].append((time.thread_time() - c0) * 1000)
    return wall, cpu


def bench_pages(base_url: str, loads: int = 3) -> dict[str, list[tuple[float, float]]]:
    """Load every page `loads` times (after one warm-up load) in headless Chromium.

    Returns per page a list of (ms until drawn, CPU ms spent by the browser processes and this
    server process for that load): the CPU figure does not grow when the machine is busy, and on
    an idle machine the page cannot take longer than it (the work runs on at most that much CPU).
    """
    import dash

    from . import browser

    pages = sorted(dash.page_registry.values(), key=lambda p: p.get("order") or 0)
    drv = browser.Driver(1440, 900)
    out: dict[str, list[tuple[float, float]]] = {}
    try:
        for p in pages:
            drv.get(base_url + p["path"])
            drv.wait_drawn(timeout=60)
            ts = []
            for _ in range(loads):
                time.sleep(0.3)  # let the previous page's work settle
                c0 = drv.cpu_seconds() + time.process_time()
                drv.get(base_url + p["path"])
                ms = drv.wait_drawn(timeout=60, settle=0.0)
                cpu = drv.cpu_seconds() + time.process_time() - c0
                ts.append((ms, cpu * 1000))
            errors = drv.console_errors()
            if errors:
                print(f"  console errors on {p['path']}: {errors}", file=sys.stderr)
            out[p["path"]] = ts
    finally:
        drv.quit()
    return out


def _p95(xs: list[float]) -> float:
    return float(np.percentile(xs, 95)) if xs else float("nan")


def main(argv: list[str] | None = None) -> int:
    """Print callback and page-draw figures; exit 1 when a target is missed."""
    ap = argparse.ArgumentParser(prog="python -m dashboard.bench", description=__doc__.splitlines()[0])
    ap.add_argument("--lake", required=True)
    ap.add_argument("--quick", action="store_true", help="fewer filter combinations")
    ap.add_argument("--no-browser", action="store_true", help="skip the headless Chromium page draws")
    ap.add_argument("--loads", type=int, default=3, help="timed loads per page")
    args = ap.parse_args(argv)

    app = create_app(args.lake, users={}, warm=False)
    t0 = time.perf_counter()
    warm_up()
    warm = (time.perf_counter() - t0) * 1000
    uad = data.read_arrow("gold", "user_activity_daily")
    users = data.users_frame()
    b = data.lake_bounds()
    print(f"lake {args.lake}: {0 if users is None else len(users):,} users, "
          f"{0 if uad is None else uad.num_rows:,} user-day rows, {b[0]} .. {b[1]}" if b else "empty lake")
    print(f"cold load of all tables + indexes: {warm:,.0f} ms; load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} CPUs")

    # one untimed pass so imports and first-use costs are not counted
    for _name, fn, fargs in callback_cases(True)[:40]:
        fn(*fargs)
    times, cpu = bench_callbacks(args.quick)
    all_ms = [t for ts in times.values() for t in ts]
    all_cpu = [t for ts in cpu.values() for t in ts]
    print(f"\nserver-side callbacks ({len(all_ms)} calls, target p95 < {TARGET_CALLBACK_MS:.0f} ms; "
          "wall = elapsed, cpu = this thread's CPU time)")
    print(f"  {'callback':36s} {'calls':>5s} {'p50':>7s} {'p95':>7s} {'max':>7s} {'cpu p50':>8s} {'cpu p95':>8s}")
    for name in sorted(times):
        ts, cs = times[name], cpu[name]
        print(f"  {name:36s} {len(ts):5d} {statistics.median(ts):7.1f} {_p95(ts):7.1f} {max(ts):7.1f} "
              f"{statistics.median(cs):8.1f} {_p95(cs):8.1f}")
    overall, overall_cpu = _p95(all_ms), _p95(all_cpu)
    print(f"  {'ALL':36s} {len(all_ms):5d} {statistics.median(all_ms):7.1f} {overall:7.1f} {max(all_ms):7.1f} "
          f"{statistics.median(all_cpu):8.1f} {overall_cpu:8.1f}")
    print(f"  load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    ok = overall < TARGET_CALLBACK_MS

    if not args.no_browser:
        from . import browser

        if not browser.available():
            print("\npage draw: skipped (chromium/chromedriver missing: scripts/install_chromium.sh)")
        else:
            with browser.serve(app) as url:
                draws = bench_pages(url, args.loads)
            print(f"\npage draw in headless Chromium ({args.loads} loads each, target < {TARGET_DRAW_MS:.0f} ms; "
                  "cpu = CPU time of the browser processes + this server during the load)")
            print(f"  {'page':20s} {'median':>7s} {'max':>7s} {'cpu med':>8s} {'cpu max':>8s}")
            worst = 0.0
            for path, ts in draws.items():
                walls, cpus = [t[0] for t in ts], [t[1] for t in ts]
                worst = max(worst, max(walls))
                print(f"  {path:20s} {statistics.median(walls):7.0f} {max(walls):7.0f} "
                      f"{statistics.median(cpus):8.0f} {max(cpus):8.0f}")
            print(f"  {'worst':20s} {'':7s} {worst:7.0f}")
            print(f"  load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
            ok = ok and worst < TARGET_DRAW_MS
    if os.getloadavg()[0] > (os.cpu_count() or 1):
        print("\nnote: the machine is busy (load average above the CPU count): wall-clock figures include "
              "time spent waiting for a CPU; the cpu columns do not")
    print("\nresult:", "all targets met" if ok else "a target was missed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
