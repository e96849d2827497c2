"""Parity with gold, proven: the dashboard's numbers equal the Spark-built gold.

One small lake is built once per test run by the real pipeline (generator -> bronze -> silver ->
gold, Spark). The dashboard's data layer is pointed at it and every data call of every page is
walked:

- with no filter and the full date range, each KPI and each series equals the gold table it shows,
  read here independently with delta-rs (never through `dashboard.data`);
- under a filter (date range, preset, granularity, country, device, gender, age group, and the Users
  page's segment and cluster), the numbers equal an independent computation from silver.events /
  silver.users (with gold.users for the user attributes a filter selects on), applying
  docs/spec/metrics.md directly.

The data layer is only called through public names of `dashboard.data` (`data.<name>`).

The lake is the one tests/test_e2e.py checks (the session fixture `generated_build` in
tests/conftest.py), so the module adds only its own seconds to `make test`.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from deltalake import DeltaTable

from dashboard import data
from dashboard.config import configure
from dashboard.filters import Filters

pytestmark = [pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]
# The shared lake: 300 users x 45 days, seed 7 (2025-11-17 .. 2025-12-31: ~16k events, 10 currencies, 14 countries)
ALL = Filters(preset="all")


# --------------------------------------------------------------------------- the lake

@pytest.fixture(scope="module")
def built_lake(generated_build) -> Path:
    """The lake the pipeline builds from generated events, shared with test_e2e (tests/conftest.py)."""
    assert generated_build["result"].status == "success"
    data.clear_caches()
    return generated_build["lake"]


@pytest.fixture(autouse=True)
def on_lake(built_lake):
    """The dashboard pointed at the built lake before each test (other modules point it at fake lakes;
    the data layer's caches are keyed on the lake's path, so nothing of theirs is reused here)."""
    configure(built_lake, users={})
    return built_lake


def _read(lake: Path, layer: str, name: str) -> pd.DataFrame:
    table = DeltaTable(str(lake / layer / name)).to_pyarrow_table()
    df = table.to_pandas()
    for field in table.schema:
        if pa.types.is_date(field.type):
            df[field.name] = pd.to_datetime(df[field.name])
    return df


@pytest.fixture(scope="module")
def gold(built_lake):
    """gold.<name> read with delta-rs, independently of the dashboard (dates as datetime64)."""
    return cache(lambda name: _read(built_lake, "gold", name))


def same(got, want, what: str, rtol: float = 1e-9) -> None:
    """Equal element by element (floats to rtol; NaN equals NaN), with the first differences named."""
    got = np.asarray(got, dtype=float)
    want = np.asarray(want, dtype=float)
    assert got.shape == want.shape, f"{what}: {got.size} values, expected {want.size}"
    bad = ~np.isclose(got, want, rtol=rtol, atol=1e-9, equal_nan=True)
    assert not bad.any(), f"{what}: at {np.flatnonzero(bad)[:5].tolist()} dashboard {got[bad][:5].tolist()} " \
                          f"!= expected {want[bad][:5].tolist()}"


def same_dates(got, want, what: str) -> None:
    assert list(pd.DatetimeIndex(got)) == list(pd.DatetimeIndex(want)), f"{what}: dates differ"


def kpi_map(cards) -> dict:
    return {k.key: k for k in cards}


def _mean(s: pd.Series) -> float:
    return float(s.dropna().mean())


# --------------------------------------------------------------------------- the lake has something on every page

def test_the_built_lake_has_data_for_every_page(gold):
    """Guards the parity tests against passing on empty tables."""
    assert gold("engagement_daily")["dau"].gt(0).sum() >= 40
    assert gold("revenue_by_currency_daily")["currency"].nunique() >= 3
    assert gold("revenue_daily")["failed_payments"].sum() > 0
    funnel = gold("funnel_daily").groupby("step_index")["users"].sum()
    assert list(funnel.index) == [1, 2, 3, 4] and funnel.loc[4] > 0
    assert gold("funnel_daily")["device"].nunique() >= 3
    assert (~gold("funnel_daily")["is_window_complete"]).any() and gold("funnel_daily")["is_window_complete"].any()
    assert len(gold("quiz_daily")) and len(gold("course_progress"))
    assert gold("loyalty_daily")["points_redeemed"].sum() > 0
    users = gold("users")
    assert users["country"].nunique() >= 5 and users["gender"].nunique() >= 3
    assert users["age_group"].nunique() >= 5 and users["segment"].nunique() >= 5
    assert users["cluster"].nunique() >= 2
    assert (gold("user_revenue")["revenue"] > 0).sum() >= 10
    assert set(gold("hourly_activity")["event"]) >= {"app_uninstall", "purchase"}


# --------------------------------------------------------------------------- no filter, full range: equals gold

def test_lake_range_is_engagement_daily_first_to_last_date(gold):
    ed = gold("engagement_daily")
    first, last = ed["activity_date"].min().date(), ed["activity_date"].max().date()
    assert data.lake_bounds() == (first, last)
    assert data.resolve(ALL) == (first, last)


def test_filter_bar_offers_the_values_found_in_gold(gold):
    uad, users = gold("user_activity_daily"), gold("users")
    options = data.filter_options()
    assert options["device"] == sorted(set(uad["device"].fillna("unknown")))
    for dim in ("country", "gender", "age_group"):
        want = set(uad[dim].fillna("unknown")) | set(users[dim].fillna("unknown"))
        assert set(options[dim]) == want, dim


def test_overview_kpis_equal_gold_aggregates(gold):
    """Overview cards over the full range: averages, last values and sums of the daily gold tables;
    distinct-user cards from gold.users / gold.user_revenue; D7 from gold.retention_daily."""
    ed, rd, ld = gold("engagement_daily"), gold("revenue_daily"), gold("loyalty_daily")
    users, buyers = gold("users"), gold("user_revenue")
    active = users["last_active_date"].notna()
    cards = kpi_map(data.kpis(ALL))
    ret7 = gold("retention_daily").query("day_n == 7")
    want = {
        "dau": _mean(ed["dau"]), "wau": float(ed["wau"].iloc[-1]), "mau": float(ed["mau"].iloc[-1]),
        "stickiness": _mean(ed["stickiness"]), "new_users": float(ed["new_users"].sum()),
        "active_users": float(active.sum()), "outstanding_points": float(ld["outstanding_points"].iloc[-1]),
        "revenue": float(rd["revenue"].sum()), "conversion_rate": len(buyers) / active.sum(),
        "d7": ret7["retained_users"].sum() / ret7["cohort_size"].sum(),
    }
    assert set(cards) == set(want)
    for key, value in want.items():
        same(cards[key].value, value, f"overview card {key}")
        assert cards[key].previous is None, f"{key}: the full range has no previous period in the lake"
    lo, hi = data.lake_bounds()
    new_active = (active & users["first_seen_date"].between(pd.Timestamp(lo), pd.Timestamp(hi))).sum()
    assert cards["active_users"].note == f"{new_active:,} new · {active.sum() - new_active:,} existing"
    assert cards["revenue"].unit == rd["reporting_currency"].iloc[0]
    for key, col in (("dau", "dau"), ("wau", "wau"), ("mau", "mau"), ("stickiness", "stickiness"),
                     ("new_users", "new_users")):
        same(cards[key].spark, ed[col], f"overview sparkline {key}")
    same(cards["revenue"].spark, rd["revenue"], "overview sparkline revenue")
    same(cards["outstanding_points"].spark, ld["outstanding_points"], "overview sparkline outstanding")
    same(cards["conversion_rate"].spark, rd["conversion_rate"].where(ed["dau"] > 0), "daily buyer conversion")


@pytest.mark.parametrize("preset", ["30d", "7d"])
def test_default_and_last_week_cards_equal_gold_over_their_days_and_the_days_before(gold, preset):
    """The cards a user sees first (last 30 days, no filter) and the last 7 days, whose previous period
    lies in the lake; the D7 card of the last 7 days, whose cohorts are not 7 days old yet, uses the 7
    latest cohorts that are (metrics.md, Dn retention)."""
    ed, rd = gold("engagement_daily").set_index("activity_date"), gold("revenue_daily").set_index("activity_date")
    n = int(preset[:-1])
    last = ed.index.max()
    lo, plo = last - pd.Timedelta(days=n - 1), last - pd.Timedelta(days=2 * n - 1)
    cur, prev = ed.loc[lo:], ed.loc[plo:lo - pd.Timedelta(days=1)]
    cards = kpi_map(data.kpis(Filters(preset=preset)))
    has_prev = plo >= ed.index.min()
    for key, fn in (("dau", lambda d: _mean(d["dau"])), ("wau", lambda d: d["wau"].iloc[-1]),
                    ("mau", lambda d: d["mau"].iloc[-1]), ("stickiness", lambda d: _mean(d["stickiness"])),
                    ("new_users", lambda d: d["new_users"].sum())):
        same(cards[key].value, fn(cur), f"{preset} card {key}")
        if has_prev:
            same(cards[key].previous, fn(prev), f"{preset} card {key}, previous period")
        else:
            assert cards[key].previous is None
    same(cards["revenue"].value, rd.loc[lo:, "revenue"].sum(), f"{preset} revenue card")
    r7 = gold("retention_daily").query("day_n == 7").set_index("cohort_date")
    newest = last - pd.Timedelta(days=7)
    clo, chi = (lo, newest) if lo <= newest else (newest - pd.Timedelta(days=n - 1), newest)
    r = r7.loc[clo:chi]
    same(cards["d7"].value, r["retained_users"].sum() / r["cohort_size"].sum(), f"{preset} D7 card")
    assert bool(cards["d7"].note) == (lo > newest)


def test_engagement_daily_series_equal_engagement_daily(gold):
    """Overview and Engagement charts, day granularity: DAU, WAU, MAU, stickiness, new and existing."""
    ed = gold("engagement_daily")
    got = data.engagement(ALL)
    same_dates(got["period"], ed["activity_date"], "engagement periods")
    for col in ("dau", "wau", "mau", "stickiness", "new_users", "new_active_users", "existing_active_users"):
        same(got[col], ed[col], f"engagement {col}")


def test_engagement_by_month_equals_engagement_monthly(gold):
    """Month view: calendar-month MAU, avg DAU, monthly stickiness, new users, partial months."""
    em = gold("engagement_monthly")
    got = data.engagement(Filters(preset="all", grain="month"))
    same_dates(got["period"], em["month"], "engagement months")
    for mine, theirs in (("active", "mau"), ("avg_dau", "avg_dau"), ("stickiness", "stickiness"),
                         ("new_active_users", "new_active_users"),
                         ("existing_active_users", "existing_active_users")):
        same(got[mine], em[theirs], f"monthly {mine} vs engagement_monthly.{theirs}")
    assert list(got["partial"]) == list(~em["is_complete"])
    # The frame's `new_users` (drawn by no chart, in no CSV) sums the daily new users of the days in the
    # range; engagement_monthly.new_users counts everyone first seen in the month, also by a registration
    # on a day of a partial month before the lake's first date. They agree on complete months only.
    complete = em["is_complete"].to_numpy()
    same(got["new_users"][complete], em["new_users"][complete], "monthly new users (complete months)")


def test_lifecycle_equals_lifecycle_daily(gold):
    lc = gold("lifecycle_daily")
    got = data.lifecycle(ALL)
    same_dates(got["period"], lc["activity_date"], "lifecycle dates")
    for col in ("new", "returning", "resurrecting", "dormant"):
        same(got[col], lc[col], f"lifecycle {col}")  # null on the first date in both


def test_retention_cohorts_curve_and_cards_equal_retention_tables(gold):
    rdaily = gold("retention_daily").query("cohort_size > 0").sort_values(["cohort_date", "day_n"])
    got = data.retention(ALL, "day")
    same_dates(got["cohort"], rdaily["cohort_date"], "daily cohorts")
    same(got["n"], rdaily["day_n"], "day n")
    same(got["cohort_size"], rdaily["cohort_size"], "daily cohort size")
    same(got["retained"], rdaily["retained_users"], "daily retained")
    same(got["retained_unbounded"], rdaily["retained_users_unbounded"], "daily retained (on or after)")
    same(got["rate"], rdaily["retention_rate"], "daily retention rate")
    for unbounded, col in ((False, "retained_users"), (True, "retained_users_unbounded")):
        g = rdaily.groupby("day_n")[[col, "cohort_size"]].sum()
        curve = data.retention_curve(got, unbounded)
        same(curve["n"], g.index, "curve n")
        same(curve["rate"], g[col] / g["cohort_size"], f"average curve ({col})")
    rweekly = gold("retention_weekly").query("cohort_size > 0").sort_values(["cohort_week", "week_n"])
    got_w = data.retention(ALL, "week")
    same_dates(got_w["cohort"], rweekly["cohort_week"], "weekly cohorts")
    for mine, theirs in (("n", "week_n"), ("cohort_size", "cohort_size"), ("retained", "retained_users"),
                         ("rate", "retention_rate")):
        same(got_w[mine], rweekly[theirs], f"weekly {mine}")
    cards = kpi_map(data.retention_kpis(ALL))
    assert list(cards) == ["d1", "d7", "d30"]
    for n in (1, 7, 30):
        r = rdaily[rdaily["day_n"] == n]
        same(cards[f"d{n}"].value, r["retained_users"].sum() / r["cohort_size"].sum(), f"D{n} card")
        same(cards[f"d{n}"].spark, r["retention_rate"], f"D{n} per cohort")


def test_funnel_steps_devices_and_trend_equal_funnel_tables(gold):
    fd, fe = gold("funnel_daily"), gold("funnel_entries")
    steps = data.funnel_steps(ALL)
    by_step = fd.groupby(["step_index", "step_name"])["users"].sum().reset_index()
    assert list(steps["step_name"]) == list(by_step["step_name"])
    same(steps["users"], by_step["users"], "entries per step")
    same(steps["step_conversion"], by_step["users"] / by_step["users"].shift(1), "step conversion")
    same(steps["overall_conversion"], by_step["users"] / by_step["users"].iloc[0], "funnel conversion (entries)")
    open_first = fd[(fd["step_index"] == 1) & ~fd["is_window_complete"]]["users"].sum()
    same(steps["open_entries"].iloc[0], open_first, "entries with an open window")
    best = fe.groupby("user_id")["reached"].max()
    distinct = [float((best >= k).sum()) for k in by_step["step_index"]]
    same(steps["distinct_users"], distinct, "distinct users per step (funnel_entries)")
    same(steps["user_conversion"], np.array(distinct) / distinct[0], "funnel conversion (distinct users)")
    same(len(fe), by_step["users"].iloc[0], "one funnel_entries row per entry")

    dev = data.funnel_by_device(ALL)
    g = fd.groupby(["device", "step_index"])["users"].sum().reset_index()
    same(dev["users"], g["users"], "entries per device and step")
    assert list(dev["device"]) == list(g["device"])
    first = g[g["step_index"] == 1].set_index("device")["users"]
    same(dev["overall_conversion"], g["users"] / g["device"].map(first), "conversion by device")

    for include_open in (False, True):
        t = data.funnel_over_time(ALL, include_open=include_open)
        rows = fd if include_open else fd[fd["is_window_complete"]]
        per_day = rows.pivot_table(index="activity_date", columns="step_index", values="users", aggfunc="sum")
        per_day = per_day.reindex(pd.DatetimeIndex(t["period"])).fillna(0)
        same(t["entries"], per_day[1], f"funnel entries per day (open={include_open})")
        same(t["completions"], per_day[4], f"funnel completions per day (open={include_open})")
        same(t["conversion_rate"], (per_day[4] / per_day[1].where(per_day[1] > 0)), "funnel conversion per day")


def test_revenue_series_and_cards_equal_revenue_daily_and_user_revenue(gold):
    rd, ed, ur = gold("revenue_daily"), gold("engagement_daily"), gold("user_revenue")
    got = data.revenue(ALL)
    same_dates(got["period"], rd["activity_date"], "revenue dates")
    for col in ("orders", "revenue", "buyers", "failed_payments", "conversion_rate", "arpu"):
        same(got[col], rd[col], f"revenue {col}")
    same(got["arppu"], rd["arppu"], "revenue arppu")
    same(got["active"], ed["dau"], "revenue active users")
    cards = kpi_map(data.revenue_kpis(ALL))
    active = gold("users")["last_active_date"].notna().sum()
    rev = rd["revenue"].sum()
    want = {"revenue": rev, "orders": rd["orders"].sum(), "buyers": len(ur), "arpu": rev / active,
            "arppu": rev / len(ur), "conversion_rate": len(ur) / active}
    assert set(cards) == set(want)
    for key, value in want.items():
        same(cards[key].value, value, f"revenue card {key}")
    same(rev, ur["revenue"].sum(), "revenue_daily and user_revenue agree", rtol=1e-12)
    assert data.buyers_in_range(ALL) == len(ur)
    assert data.reporting_currency() == rd["reporting_currency"].iloc[0] == "USD"


def test_pareto_and_top_shares_equal_user_revenue(gold):
    ur = gold("user_revenue")
    paying = ur[ur["revenue"] > 0].sort_values("revenue", ascending=False)
    p = data.pareto(ALL)
    same(p["revenue"], paying["revenue"], "pareto revenue per paying user")
    assert set(p["user_id"]) == set(paying["user_id"])
    same(p["revenue_share"], paying["revenue"].cumsum() / paying["revenue"].sum(), "pareto cumulative share")
    shares = data.top_shares(p)
    for top, value in shares.items():
        k = max(1, int(np.ceil(top * len(paying))))
        same(value, paying["revenue"].iloc[:k].sum() / paying["revenue"].sum(), f"top {top:.0%} share")


def test_revenue_by_currency_and_unconverted_orders_equal_revenue_by_currency_daily(gold):
    rc = gold("revenue_by_currency_daily")
    got = data.revenue_by_currency(ALL).set_index("currency").sort_index()
    g = rc.groupby("currency").agg(orders=("orders", "sum"), amount=("amount", "sum"),
                                   revenue=("revenue", lambda v: v.sum(min_count=1)))
    assert list(got.index) == list(g.index)
    for col in ("orders", "amount", "revenue"):
        same(got[col], g[col], f"revenue by currency {col}")
    same(got["revenue"].sum(), gold("revenue_daily")["revenue"].sum(), "currencies add up to revenue_daily")
    un = data.unconverted_orders()
    assert len(un) == int((~rc["converted"]).sum())


def test_conversion_by_device_equals_user_activity_daily(gold):
    uad = gold("user_activity_daily")
    got = data.conversion_by_device(ALL)
    want = uad.groupby(["activity_date", "device"]).agg(active=("user_id", "nunique"),
                                                        buyers=("purchases", lambda v: int((v > 0).sum())))
    got = got.set_index(["period", "device"])
    want = want.reindex(got.index, fill_value=0)
    same(got["active"], want["active"], "active users per day and device")
    same(got["buyers"], want["buyers"], "buyers per day and device")
    assert set(got.index.get_level_values("device")) == set(uad["device"])
    # every user-day with a device is in the split: the days' device counts add up to DAU
    same(got.groupby(level="period")["active"].sum(), gold("engagement_daily")["dau"], "device split adds to DAU")


def test_loyalty_series_cards_and_balances_equal_loyalty_tables(gold):
    ld, lb = gold("loyalty_daily"), gold("loyalty_balances")
    got = data.loyalty(ALL)
    same_dates(got["period"], ld["activity_date"], "loyalty dates")
    for col in ("points_earned", "points_redeemed", "earners", "redeemers", "participants", "outstanding_points",
                "participation_rate"):
        same(got[col], ld[col], f"loyalty {col}")
    cards = kpi_map(data.loyalty_kpis(ALL))
    active = gold("users")["last_active_date"].notna().sum()
    same(cards["outstanding_points"].value, ld["outstanding_points"].iloc[-1], "outstanding points card")
    same(cards["points_earned"].value, ld["points_earned"].sum(), "points earned card")
    same(cards["points_redeemed"].value, ld["points_redeemed"].sum(), "points redeemed card")
    same(cards["participation_rate"].value, len(lb) / active, "participation (range) card")
    same(ld["outstanding_points"].iloc[-1], lb["balance"].sum(), "outstanding = sum of balances")
    b = data.balances(ALL)
    assert b["balance"].is_monotonic_decreasing
    mine = b.set_index("user_id").sort_index()
    theirs = lb.set_index("user_id").sort_index()
    assert list(mine.index) == list(theirs.index)
    for col in ("points_earned", "points_redeemed", "balance"):
        same(mine[col], theirs[col], f"balances {col}")


def test_sessions_and_content_equal_their_gold_tables(gold):
    sd = gold("sessions_daily")
    got = data.sessions(ALL)
    same_dates(got["period"], sd["activity_date"], "session dates")
    for mine, theirs in (("sessions", "sessions"), ("user_days", "users"),
                         ("total_session_seconds", "total_session_seconds"),
                         ("avg_session_seconds", "avg_session_seconds"),
                         ("avg_time_per_user_seconds", "avg_time_per_user_seconds")):
        same(got[mine], sd[theirs], f"sessions {mine}")
    for fn, name, key, value in ((data.top_events, "event_counts_daily", "event", "events"),
                                 (data.top_pages, "page_views_daily", "page", "views")):
        top = fn(ALL)
        g = gold(name).groupby(key)[[value, "users"]].sum()
        assert len(top) == min(15, len(g))
        same(top[value], g.loc[top[key], value], f"{name} {value}")
        same(top["users"], g.loc[top[key], "users"], f"{name} users (summed over days)")
        left_out = g.drop(index=top[key])[value]
        assert not len(left_out) or left_out.max() <= top[value].min(), f"{name}: not the top {len(top)}"
    ha = gold("hourly_activity")
    for event in ("app_uninstall", "purchase"):
        grid = data.hourly(event).set_index(["day_of_week", "hour"])["events"]
        want = ha[ha["event"] == event].set_index(["day_of_week", "hour"])["events"]
        assert len(grid) == 7 * 24
        same(grid.loc[want.index], want, f"hourly {event}")
        assert grid.sum() == want.sum()
    q = data.quizzes(ALL).set_index("quiz_id")
    g = gold("quiz_daily").groupby("quiz_id")[["attempts", "participants", "passes"]].sum()
    assert list(q.index) == list(g.index)
    for col in ("attempts", "participants", "passes"):
        same(q[col], g[col], f"quizzes {col}")
    same(q["pass_rate"], g["passes"] / g["attempts"], "quiz pass rate")
    c = data.courses().set_index("course_id").sort_index()
    cp = gold("course_progress").set_index("course_id").sort_index()
    for col in ("learners", "completions", "completion_rate"):
        same(c[col], cp[col], f"courses {col}")


def test_demographics_equal_gold_demographics_and_users(gold):
    dims = ["gender", "age_group", "country"]
    gd = gold("demographics").set_index(dims).sort_index()
    last30 = data.demographics(Filters()).set_index(dims).sort_index()  # the default range: last 30 days
    assert list(last30.index) == list(gd.index)
    for mine, theirs in (("users", "users"), ("active_users", "active_users_30d"), ("new_users", "new_users_30d")):
        same(last30[mine], gd[theirs], f"demographics {mine} (last 30 days)")
    # the full range: computed by the dashboard; users per cell still gold.demographics, active and new
    # from gold.users
    full = data.demographics(ALL).set_index(dims).sort_index()
    users = gold("users").fillna({d: "unknown" for d in dims})
    lo, hi = (pd.Timestamp(x) for x in data.lake_bounds())
    g = users.groupby(dims).agg(users=("user_id", "size"),
                                active=("last_active_date", "count"),
                                new=("first_seen_date", lambda s: int(s.between(lo, hi).sum())))
    assert list(full.index) == list(g.index)
    same(full["users"], gd["users"], "demographics users (full range)")
    same(full["active_users"], g["active"], "demographics active users (full range)")
    same(full["new_users"], g["new"], "demographics new users (full range)")


def test_users_page_equals_gold_users(gold):
    users = gold("users")
    frame = data.users_frame()
    assert not any("email" in c for c in frame.columns)
    assert list(frame["user_id"]) == list(users["user_id"])
    rows, total = data.users_page(ALL, page_size=20)
    assert total == len(users) and len(rows) == 20
    _, active_total = data.users_page(ALL, active_only=True)
    assert active_total == users["last_active_date"].notna().sum()
    ranked, _ = data.users_page(ALL, sort_by=[{"column_id": "revenue", "direction": "desc"}], page_size=5)
    same(ranked["revenue"], users["revenue"].sort_values(ascending=False).head(5), "users sorted by revenue")
    export = data.users_export(ALL)
    assert len(export) == len(users)
    top = users.sort_values("events", ascending=False).iloc[0]
    prof = data.user_profile(top["user_id"])
    for col in ("active_days", "events", "orders", "revenue", "points_balance", "age"):
        same(prof[col], top[col], f"profile {col}")
    assert (prof["segment"], prof["country"], prof["cluster"]) == (top["segment"], top["country"], top["cluster"])
    uad = gold("user_activity_daily")
    mine = uad[uad["user_id"] == top["user_id"]].sort_values("activity_date")
    act = data.user_activity(top["user_id"], *data.lake_bounds())
    same_dates(act["date"], mine["activity_date"], "profile activity dates")
    for col in ("events", "sessions", "purchases", "revenue", "points_earned", "points_redeemed"):
        same(act[col], mine[col], f"profile activity {col}")
    assert list(act["device"]) == list(mine["device"])
    same(act["events"].sum(), top["events"], "a user's events per day add up to gold.users.events")


def test_segments_and_clusters_equal_segment_summary_cluster_profiles_and_users(gold):
    ss, cp, users = gold("segment_summary"), gold("cluster_profiles"), gold("users")
    seg = data.segments(ALL).set_index("segment").sort_index()
    want = ss.set_index("segment").sort_index()
    for col in ("users", "share", "avg_revenue", "avg_active_days"):
        same(seg[col], want[col], f"segment sizes {col}")
    prof = data.segment_profiles(ALL).set_index("segment").sort_index()
    g = users.groupby("segment").agg(users=("user_id", "size"), avg_revenue=("revenue", "mean"),
                                     avg_orders=("orders", "mean"), avg_age=("age", "mean"))
    for col in g.columns:
        same(prof[col], g[col], f"segment profiles {col}")
    same(prof["users"], want["users"].loc[prof.index], "profiles and summary agree")
    trend = data.segment_trend(ALL)
    uad = gold("user_activity_daily").merge(users[["user_id", "segment"]], on="user_id")
    per = uad.groupby(["activity_date", "segment"])["user_id"].nunique()
    t = trend.set_index(["period", "segment"])["active"]
    same(t.loc[per.index], per, "active users by segment per day")
    assert t.drop(index=per.index).eq(0).all()
    same(t.groupby(level="period").sum(), gold("engagement_daily")["dau"], "segments add up to DAU")
    cl = data.clusters(ALL)
    for col in ("cluster", "users", "share", "silhouette"):
        same(cl[col], cp[col], f"cluster profiles {col}")
    assert list(cl["label"]) == list(cp["label"])
    pts = data.cluster_points(ALL)
    assert len(pts) == min(800, users["cluster_pc1"].notna().sum())
    ref = users.set_index("user_id").loc[pts["user_id"]]
    same(pts["cluster_pc1"], ref["cluster_pc1"], "cluster map x")
    same(pts["cluster"], ref["cluster"], "cluster map colours")


def test_health_page_equals_the_lakes_delta_logs_and_ops_tables(built_lake, gold, cfg):
    health = data.table_health().set_index(["layer", "table"])
    for (layer, name), row in health.iterrows():
        assert row["status"] == "ok", (layer, name, row["status"])
        dt = DeltaTable(str(built_lake / layer / name))
        assert row["version"] == dt.version(), (layer, name)
        assert row["rows"] == dt.to_pyarrow_table().num_rows, (layer, name)
    on_disk = {(p.parent.parent.name, p.parent.name) for p in built_lake.glob("*/*/_delta_log")}
    assert set(health.index) == on_disk
    assert all(("gold", n) in on_disk for n in data.GOLD_TABLES)
    q = data.quarantine()
    assert len(q) == len(gold("quarantine_summary"))
    runs = _read(built_lake, "ops", "pipeline_runs")
    assert list(data.pipeline_runs()["run_id"]) == list(runs.sort_values("started_at", ascending=False)["run_id"])
    last = data.last_run()
    assert last["status"] == "success"
    durations = {k: v for k, v in json.loads(runs["durations_json"].iloc[-1]).items() if "." not in k}
    d = data.run_durations(last)
    assert dict(zip(d["step"], d["seconds"])) == durations
    assert data.reporting_timezone() == cfg["timezone"]
    assert data.erasures() is None  # no forget was run


def everyone() -> Filters:
    """Every country selected: the whole population, but through the data layer's own computation from
    user_activity_daily (numpy) instead of the gold aggregates."""
    return Filters(preset="all", country=tuple(data.filter_options()["country"]))


def test_the_filtered_computation_selecting_everyone_equals_gold(gold):
    """The numpy path that serves every filtered view gives gold's numbers when the filter keeps everyone:
    the same DAU, WAU, MAU, stickiness (the issue's example), new users, lifecycle, revenue, loyalty and
    retention as the Spark-built tables."""
    f = everyone()
    assert f.user_filtered
    ed, rd, ld = gold("engagement_daily"), gold("revenue_daily"), gold("loyalty_daily")
    eng = data.engagement(f)
    for col in ("dau", "wau", "mau", "stickiness", "new_users", "new_active_users", "existing_active_users"):
        same(eng[col], ed[col], f"computed {col}")
    month = data.engagement(Filters(preset="all", grain="month", country=f.country))
    em = gold("engagement_monthly")
    for mine, theirs in (("active", "mau"), ("avg_dau", "avg_dau"), ("stickiness", "stickiness")):
        same(month[mine], em[theirs], f"computed monthly {mine}")
    lc = data.lifecycle(f)
    for col in ("new", "returning", "resurrecting", "dormant"):
        same(lc[col], gold("lifecycle_daily")[col], f"computed lifecycle {col}")
    rev = data.revenue(f)
    for col in ("orders", "revenue", "buyers", "conversion_rate", "arpu", "arppu"):
        same(rev[col], rd[col], f"computed revenue {col}")
    loy = data.loyalty(f)
    for col in ("points_earned", "points_redeemed", "earners", "redeemers", "participants", "outstanding_points",
                "participation_rate"):
        same(loy[col], ld[col], f"computed loyalty {col}")
    ses = data.sessions(f)
    same(ses["sessions"], gold("sessions_daily")["sessions"], "computed sessions")
    same(ses["sessions_per_user"], gold("sessions_daily")["sessions"] / gold("sessions_daily")["users"],
         "computed sessions per active user")
    ret = data.retention(f, "day")
    want = gold("retention_daily").query("cohort_size > 0").sort_values(["cohort_date", "day_n"])
    same_dates(ret["cohort"], want["cohort_date"], "computed cohorts")
    for mine, theirs in (("n", "day_n"), ("cohort_size", "cohort_size"), ("retained", "retained_users"),
                         ("retained_unbounded", "retained_users_unbounded")):
        same(ret[mine], want[theirs], f"computed retention {mine}")
    retw = data.retention(f, "week")
    want = gold("retention_weekly").query("cohort_size > 0").sort_values(["cohort_week", "week_n"])
    for mine, theirs in (("n", "week_n"), ("cohort_size", "cohort_size"), ("retained", "retained_users")):
        same(retw[mine], want[theirs], f"computed weekly retention {mine}")
    dims = ["gender", "age_group", "country"]
    demo = data.demographics(Filters(device=tuple(data.filter_options()["device"]))).set_index(dims).sort_index()
    gd = gold("demographics").set_index(dims).sort_index()
    for mine, theirs in (("users", "users"), ("active_users", "active_users_30d"), ("new_users", "new_users_30d")):
        same(demo[mine], gd[theirs], f"computed demographics {mine} (last 30 days)")


# --------------------------------------------------------------------------- every page's data calls are walked

# data.<name> the pages call that only read the lake's range or presence, not a number
NOT_NUMBERS = {"has", "resolve", "reporting_currency", "money_label"}
# every other data.<name> a page calls, and the test above that checks it against gold
WALKED = {
    "lake_bounds": test_lake_range_is_engagement_daily_first_to_last_date,
    "filter_options": test_filter_bar_offers_the_values_found_in_gold,
    "kpis": test_overview_kpis_equal_gold_aggregates,
    "engagement": test_engagement_daily_series_equal_engagement_daily,
    "lifecycle": test_lifecycle_equals_lifecycle_daily,
    "retention": test_retention_cohorts_curve_and_cards_equal_retention_tables,
    "retention_curve": test_retention_cohorts_curve_and_cards_equal_retention_tables,
    "retention_kpis": test_retention_cohorts_curve_and_cards_equal_retention_tables,
    "funnel_steps": test_funnel_steps_devices_and_trend_equal_funnel_tables,
    "funnel_by_device": test_funnel_steps_devices_and_trend_equal_funnel_tables,
    "funnel_over_time": test_funnel_steps_devices_and_trend_equal_funnel_tables,
    "revenue": test_revenue_series_and_cards_equal_revenue_daily_and_user_revenue,
    "revenue_kpis": test_revenue_series_and_cards_equal_revenue_daily_and_user_revenue,
    "buyers_in_range": test_revenue_series_and_cards_equal_revenue_daily_and_user_revenue,
    "pareto": test_pareto_and_top_shares_equal_user_revenue,
    "top_shares": test_pareto_and_top_shares_equal_user_revenue,
    "revenue_by_currency": test_revenue_by_currency_and_unconverted_orders_equal_revenue_by_currency_daily,
    "unconverted_orders": test_revenue_by_currency_and_unconverted_orders_equal_revenue_by_currency_daily,
    "conversion_by_device": test_conversion_by_device_equals_user_activity_daily,
    "loyalty": test_loyalty_series_cards_and_balances_equal_loyalty_tables,
    "loyalty_kpis": test_loyalty_series_cards_and_balances_equal_loyalty_tables,
    "balances": test_loyalty_series_cards_and_balances_equal_loyalty_tables,
    "sessions": test_sessions_and_content_equal_their_gold_tables,
    "top_events": test_sessions_and_content_equal_their_gold_tables,
    "top_pages": test_sessions_and_content_equal_their_gold_tables,
    "hourly": test_sessions_and_content_equal_their_gold_tables,
    "quizzes": test_sessions_and_content_equal_their_gold_tables,
    "courses": test_sessions_and_content_equal_their_gold_tables,
    "demographics": test_demographics_equal_gold_demographics_and_users,
    "users_frame": test_users_page_equals_gold_users,
    "users_page": test_users_page_equals_gold_users,
    "users_export": test_users_page_equals_gold_users,
    "user_profile": test_users_page_equals_gold_users,
    "user_activity": test_users_page_equals_gold_users,
    "segments": test_segments_and_clusters_equal_segment_summary_cluster_profiles_and_users,
    "segment_profiles": test_segments_and_clusters_equal_segment_summary_cluster_profiles_and_users,
    "segment_trend": test_segments_and_clusters_equal_segment_summary_cluster_profiles_and_users,
    "clusters": test_segments_and_clusters_equal_segment_summary_cluster_profiles_and_users,
    "cluster_points": test_segments_and_clusters_equal_segment_summary_cluster_profiles_and_users,
    "table_health": test_health_page_equals_the_lakes_delta_logs_and_ops_tables,
    "quarantine": test_health_page_equals_the_lakes_delta_logs_and_ops_tables,
    "pipeline_runs": test_health_page_equals_the_lakes_delta_logs_and_ops_tables,
    "last_run": test_health_page_equals_the_lakes_delta_logs_and_ops_tables,
    "run_durations": test_health_page_equals_the_lakes_delta_logs_and_ops_tables,
    "reporting_timezone": test_health_page_equals_the_lakes_delta_logs_and_ops_tables,
    "erasures": test_health_page_equals_the_lakes_delta_logs_and_ops_tables,
}


def page_data_calls() -> dict[str, set[str]]:
    """data.<name>( calls in each page module and in the components every page is made of (filter bar,
    cards); SQL Lab runs the user's own SQL and is not a metric page."""
    out = {}
    paths = sorted((ROOT / "dashboard" / "pages").glob("*.py")) + [ROOT / "dashboard" / "components.py"]
    for path in paths:
        if path.stem in ("__init__", "sql_lab"):
            continue
        out[path.stem] = set(re.findall(r"\bdata\.([a-z_][a-z0-9_]*)\(", path.read_text()))
    return out


def test_every_data_call_of_every_metric_page_has_a_parity_check():
    calls = page_data_calls()
    assert len(calls) >= 12, sorted(calls)
    for page, names in calls.items():
        missing = names - NOT_NUMBERS - set(WALKED)
        assert not missing, f"page {page} calls data.{sorted(missing)} with no parity check in this module"


# --------------------------------------------------------------------------- filtered: computed again from silver

class Silver:
    """silver.events / silver.users read with delta-rs, and the contract's definitions applied with pandas
    (docs/spec/metrics.md): activity dates in the reporting timezone, active = not an excluded event,
    first seen = the earlier of the first active date and the registration date, a user-day's device =
    the device of most of its active events (ties: alphabetical; none: unknown). User attributes
    (country, gender, age group, segment, cluster) are gold.users'."""

    def __init__(self, lake: Path, cfg: dict, users: pd.DataFrame):
        tz = cfg["timezone"]
        ev = _read(lake, "silver", "events")

        def day(ts: pd.Series) -> pd.Series:
            return ts.dt.tz_convert(tz).dt.tz_localize(None).dt.normalize()

        ev["day"] = day(ev["ts"])
        self.events = ev
        self.active = ev[~ev["event"].isin(cfg["excluded_events"])]
        self.lo, self.hi = self.active["day"].min(), self.active["day"].max()
        profiles = _read(lake, "silver", "users")
        registered = day(profiles["registered_at"]).groupby(profiles["user_id"]).min()
        first_active = self.active.groupby("user_id")["day"].min()
        self.first_seen = pd.concat([first_active, registered], axis=1).min(axis=1)
        counts = (self.active.dropna(subset=["device"]).groupby(["user_id", "day", "device"]).size()
                  .rename("n").reset_index().sort_values(["user_id", "day", "n", "device"],
                                                         ascending=[True, True, False, True])
                  .drop_duplicates(["user_id", "day"]))
        days = self.active[["user_id", "day"]].drop_duplicates()
        self.user_days = days.merge(counts[["user_id", "day", "device"]], on=["user_id", "day"], how="left") \
            .fillna({"device": "unknown"})
        purchases = ev[ev["event"] == "purchase"]
        self.orders = purchases[purchases["payment_status"].fillna("").str.strip().str.lower() == "success"]
        self.users = users.fillna({c: "unknown" for c in ("country", "gender", "age_group")})

    def ids(self, **attrs) -> set:
        """Users whose gold.users attributes are among the given values (no attribute: everyone)."""
        m = pd.Series(True, index=self.users.index)
        for col, values in attrs.items():
            m &= self.users[col].isin(values)
        return set(self.users.loc[m, "user_id"])

    def days(self, lo=None, hi=None) -> pd.DatetimeIndex:
        return pd.date_range(lo or self.lo, hi or self.hi, freq="D")

    def user_days_of(self, ids: set | None = None, devices: tuple = ()) -> pd.DataFrame:
        ud = self.user_days
        if ids is not None:
            ud = ud[ud["user_id"].isin(ids)]
        if devices:
            ud = ud[ud["device"].isin(devices)]
        return ud

    @staticmethod
    def per_day(ud: pd.DataFrame, days: pd.DatetimeIndex) -> np.ndarray:
        """Distinct users per day (DAU)."""
        return ud.groupby("day")["user_id"].nunique().reindex(days, fill_value=0).to_numpy()

    @staticmethod
    def rolling(ud: pd.DataFrame, days: pd.DatetimeIndex, window: int) -> np.ndarray:
        """Distinct users active on some day of [d - window + 1, d], for each d (WAU: 7, MAU: 30)."""
        return np.array([ud.loc[(ud["day"] > d - pd.Timedelta(days=window)) & (ud["day"] <= d), "user_id"]
                         .nunique() for d in days])

    @staticmethod
    def distinct(ud: pd.DataFrame, lo, hi) -> int:
        return ud.loc[ud["day"].between(lo, hi), "user_id"].nunique()

    def new_per_day(self, ids: set, days: pd.DatetimeIndex) -> np.ndarray:
        fs = self.first_seen[self.first_seen.index.isin(ids)]
        return fs.value_counts().reindex(days, fill_value=0).to_numpy()


@pytest.fixture(scope="module")
def silver(built_lake, cfg, gold) -> Silver:
    return Silver(built_lake, cfg, gold("users"))


def ts(d) -> pd.Timestamp:
    return pd.Timestamp(d)


def test_silver_first_seen_agrees_with_gold_users(silver, gold):
    """The independent first-seen dates are the contract's (else the new-user checks below prove little)."""
    users = gold("users").set_index("user_id")["first_seen_date"]
    mine = silver.first_seen.reindex(users.index)
    assert mine.notna().all() and (mine == users).all()


def test_a_date_range_gives_silver_dau_wau_mau_new_users_and_range_counts(silver):
    """Custom dates in the middle of the lake: per-day DAU / WAU / MAU (windows reaching back before the
    range), new users, and the cards' distinct users, buyers and orders, for the range and the period
    before it."""
    lo, hi = silver.lo + pd.Timedelta(days=14), silver.lo + pd.Timedelta(days=27)
    f = Filters(preset="custom", start=lo.date(), end=hi.date())
    days = silver.days(lo, hi)
    ud = silver.user_days
    got = data.engagement(f)
    same_dates(got["period"], days, "range days")
    same(got["dau"], silver.per_day(ud, days), "DAU in a date range")
    same(got["wau"], silver.rolling(ud, days, 7), "WAU in a date range")
    same(got["mau"], silver.rolling(ud, days, 30), "MAU in a date range")
    same(got["new_users"], silver.new_per_day(set(silver.users["user_id"]), days), "new users in a date range")
    cards = kpi_map(data.kpis(f))
    plo, phi = lo - pd.Timedelta(days=14), lo - pd.Timedelta(days=1)
    same(cards["active_users"].value, silver.distinct(ud, lo, hi), "active users in the range")
    same(cards["active_users"].previous, silver.distinct(ud, plo, phi), "active users in the period before")
    same(cards["dau"].previous, silver.per_day(ud, silver.days(plo, phi)).mean(), "average DAU of the period before")
    orders = silver.orders[silver.orders["day"].between(lo, hi)]
    rev = kpi_map(data.revenue_kpis(f))
    same(rev["orders"].value, len(orders), "orders in the range")
    same(rev["buyers"].value, orders["user_id"].nunique(), "buyers in the range")
    same(rev["conversion_rate"].value, orders["user_id"].nunique() / silver.distinct(ud, lo, hi),
         "buyer conversion (range)")


@pytest.mark.parametrize("preset", ["7d", "30d", "month"])
def test_presets_count_the_silver_active_users_of_their_days(silver, preset):
    hi = silver.hi
    lo = {"7d": hi - pd.Timedelta(days=6), "30d": hi - pd.Timedelta(days=29), "month": hi.replace(day=1)}[preset]
    f = Filters(preset=preset)
    assert data.resolve(f) == (lo.date(), hi.date())
    cards = kpi_map(data.kpis(f))
    same(cards["active_users"].value, silver.distinct(silver.user_days, lo, hi), f"active users, {preset}")
    same(cards["dau"].value, silver.per_day(silver.user_days, silver.days(lo, hi)).mean(), f"average DAU, {preset}")


@pytest.mark.parametrize("grain", ["week", "month"])
def test_week_and_month_views_count_distinct_silver_users_and_buyers_per_period(silver, grain):
    """A week or month counts each user once, not the sum of its daily counts; the first and last periods,
    which the lake covers in part, say so."""
    f = Filters(preset="all", grain=grain)
    ud = silver.user_days
    period = "W-SUN" if grain == "week" else "M"  # pandas' W-SUN weeks run Monday to Sunday
    key = ud["day"].dt.to_period(period).dt.start_time
    want = ud.groupby(key)["user_id"].nunique()
    got = data.engagement(f)
    same_dates(got["period"], want.index, f"{grain} periods")
    same(got["active"], want, f"distinct active users per {grain}")
    starts = pd.DatetimeIndex(want.index)
    ends = (starts + pd.offsets.Week(1) - pd.Timedelta(days=1)) if grain == "week" \
        else (starts + pd.offsets.MonthEnd(0))
    assert list(got["partial"]) == list((starts < silver.lo) | (ends > silver.hi))
    orders = silver.orders.assign(p=silver.orders["day"].dt.to_period(period).dt.start_time)
    rev = data.revenue(f)
    same(rev["buyers"], orders.groupby("p")["user_id"].nunique().reindex(starts, fill_value=0), f"buyers per {grain}")
    same(rev["orders"], orders.groupby("p").size().reindex(starts, fill_value=0), f"orders per {grain}")
    points = silver.events[silver.events["event"].isin(["points_earned", "points_redeemed"])]
    part = points.groupby(points["day"].dt.to_period(period).dt.start_time)["user_id"].nunique()
    loy = data.loyalty(f)
    same(loy["participants"], part.reindex(starts, fill_value=0), f"distinct loyalty participants per {grain}")
    same(loy["participation_rate"], part.reindex(starts, fill_value=0) / want, f"participation per {grain}")


def test_country_filter_counts_the_silver_activity_of_that_countrys_users(silver):
    ids = silver.ids(country=["DE"])
    f = Filters(preset="all", country=("DE",))
    ud = silver.user_days_of(ids)
    days = silver.days()
    got = data.engagement(f)
    dau = silver.per_day(ud, days)
    same(got["dau"], dau, "DAU of DE users")
    same(got["mau"], silver.rolling(ud, days, 30), "MAU of DE users")
    same(got["new_users"], silver.new_per_day(ids, days), "new DE users")
    fs = silver.first_seen[silver.first_seen.index.isin(ids)]
    new_active = ud[ud["day"].to_numpy() == fs.reindex(ud["user_id"]).to_numpy()]
    same(got["new_active_users"], silver.per_day(new_active, days), "DE users active on their first-seen date")
    same(got["existing_active_users"], dau - silver.per_day(new_active, days), "existing active DE users")
    # Hand check, by DuckDB over silver.events and gold.users of this lake (seed 7, so fixed):
    #   select e.user_id, count(*) from events e join users u using (user_id) where u.country = 'DE'
    #   and e.event <> 'app_uninstall' and cast(e.ts at time zone 'UTC' as date) = '2025-12-15' group by 1
    # lists 8 users (u0000010: 17 active events, u0000054: 5, u0000079: 5, u0000082: 7, u0000085: 12,
    # u0000116: 4, u0000117: 7, u0000141: 8), so the DE DAU of Monday 15 December 2025 is 8.
    assert got.set_index("period").loc["2025-12-15", "dau"] == 8 == dau[days.get_loc("2025-12-15")]
    cards = kpi_map(data.kpis(f))
    same(cards["active_users"].value, ud["user_id"].nunique(), "active DE users")
    orders = silver.orders[silver.orders["user_id"].isin(ids)]
    same(cards["conversion_rate"].value, orders["user_id"].nunique() / ud["user_id"].nunique(), "DE conversion")
    _, total = data.users_page(f)
    assert total == len(ids)
    # D1 retention of the DE cohorts: members first seen on c, active on c + 1
    active_on = set(zip(ud["user_id"], ud["day"]))
    table = data.retention(f, "day")
    d1 = table[table["n"] == 1].set_index("cohort")
    want = pd.DataFrame({"size": fs.value_counts(),
                         "kept": fs[[(u, d + pd.Timedelta(days=1)) in active_on for u, d in fs.items()]]
                         .value_counts()}).fillna(0)
    want = want[want.index + pd.Timedelta(days=1) <= silver.hi]
    same_dates(d1.index, want.index, "DE cohorts with a day 1")
    same(d1["cohort_size"], want["size"], "DE cohort sizes")
    same(d1["retained"], want["kept"], "DE users retained on day 1")
    same(d1["rate"], want["kept"] / want["size"], "D1 retention rate of the DE cohorts")


def test_two_countries_select_the_users_of_either(silver):
    ids = silver.ids(country=["FR", "IN"])
    f = Filters(preset="all", country=("FR", "IN"))
    same(data.engagement(f)["dau"], silver.per_day(silver.user_days_of(ids), silver.days()), "DAU of FR or IN users")


def test_device_filter_counts_silver_user_days_on_that_device_and_funnel_entries_from_it(silver):
    f = Filters(preset="all", device=("tablet",))
    ud = silver.user_days_of(devices=("tablet",))
    days = silver.days()
    got = data.engagement(f)
    same(got["dau"], silver.per_day(ud, days), "DAU on tablet user-days")
    same(got["wau"], silver.rolling(ud, days, 7), "WAU on tablet user-days")
    cards = kpi_map(data.kpis(f))
    same(cards["active_users"].value, ud["user_id"].nunique(), "users with a tablet day")
    # buyers of the day: tablet user-days with a successful purchase that day (whatever its device)
    bought = set(zip(silver.orders["user_id"], silver.orders["day"]))
    buyers = ud[[(u, d) in bought for u, d in zip(ud["user_id"], ud["day"])]]
    same(data.revenue(f)["buyers"], silver.per_day(buyers, days), "buyers on tablet user-days")
    # funnel entries: a user's first item_view of the date (earliest ts, then event_id) enters; its device
    views = silver.events[silver.events["event"] == "item_view"].sort_values(["user_id", "day", "ts", "event_id"])
    entries = views.drop_duplicates(["user_id", "day"]).fillna({"device": "unknown"})
    on_tablet = entries[entries["device"] == "tablet"]
    steps = data.funnel_steps(f)
    same(steps["users"].iloc[0], len(on_tablet), "funnel entries on tablet")
    same(steps["distinct_users"].iloc[0], on_tablet["user_id"].nunique(), "distinct users entering on tablet")
    by_device = data.funnel_by_device(ALL)
    first = by_device[by_device["step_index"] == 1].set_index("device")["users"]
    same(first, entries.groupby("device").size().reindex(first.index), "funnel entries per device")


def test_gender_filter_counts_the_silver_activity_and_new_users_of_those_users(silver):
    ids = silver.ids(gender=["female"])
    f = Filters(preset="all", gender=("female",))
    ud = silver.user_days_of(ids)
    days = silver.days()
    got = data.engagement(f)
    same(got["dau"], silver.per_day(ud, days), "DAU of female users")
    same(got["new_users"], silver.new_per_day(ids, days), "new female users")
    demo = data.demographics(f)
    assert set(demo["gender"]) == {"female"}
    same(demo["users"].sum(), len(ids), "female users")
    same(demo["active_users"].sum(), ud["user_id"].nunique(), "active female users")
    fs = silver.first_seen[silver.first_seen.index.isin(ids)]
    same(demo["new_users"].sum(), fs.between(silver.lo, silver.hi).sum(), "female users first seen in the range")


def test_age_group_filter_counts_the_silver_activity_and_points_of_those_users(silver):
    ids = silver.ids(age_group=["25-34"])
    f = Filters(preset="all", age_group=("25-34",))
    ud = silver.user_days_of(ids)
    days = silver.days()
    same(data.engagement(f)["dau"], silver.per_day(ud, days), "DAU of users aged 25-34")
    ev = silver.events[silver.events["user_id"].isin(ids)]
    earned = ev[ev["event"] == "points_earned"]
    redeemed = ev[ev["event"] == "points_redeemed"]
    loy = data.loyalty(f)
    same(loy["points_earned"], earned.groupby("day")["points"].sum().reindex(days, fill_value=0),
         "points earned by users aged 25-34")
    same(loy["outstanding_points"], (earned.groupby("day")["points"].sum().reindex(days, fill_value=0)
                                     - redeemed.groupby("day")["points"].sum().reindex(days, fill_value=0)).cumsum(),
         "outstanding points of users aged 25-34")
    participants = pd.concat([earned, redeemed])["user_id"].nunique()
    cards = kpi_map(data.loyalty_kpis(f))
    same(cards["participation_rate"].value, participants / ud["user_id"].nunique(), "participation (range), 25-34")


def test_segment_and_cluster_choices_select_gold_users_and_their_silver_activity(silver, gold):
    """The Users page's segment and cluster choices, the segment trend, cluster sizes under a filter."""
    users = gold("users")
    for segment in ("regular", "at_risk"):
        _, total = data.users_page(ALL, segment=segment)
        assert total == (users["segment"] == segment).sum()
    _, total = data.users_page(ALL, cluster="0")
    assert total == (users["cluster"] == 0).sum()
    ids = silver.ids(segment=["regular"])
    trend = data.segment_trend(ALL)
    days = silver.days()
    mine = trend[trend["segment"] == "regular"].set_index("period")["active"]
    same(mine.reindex(days), silver.per_day(silver.user_days_of(ids), days), "active regular users per day")
    cl = data.clusters(Filters(preset="all", country=("US",))).set_index("cluster")["users"]
    want = users[users["country"] == "US"].groupby("cluster").size().reindex(cl.index, fill_value=0)
    same(cl, want, "cluster sizes among US users")


def test_combined_filters_intersect(silver):
    ids = silver.ids(country=["US", "DE"], gender=["male"])
    f = Filters(preset="all", country=("DE", "US"), gender=("male",), device=("mobile",))
    ud = silver.user_days_of(ids, devices=("mobile",))
    same(data.engagement(f)["dau"], silver.per_day(ud, silver.days()), "DAU of male DE/US users on mobile days")
