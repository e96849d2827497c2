"""The data module: filters, distinct counts under filters, period comparisons, partial periods, caching."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from dashboard import data
from dashboard.filters import Filters, previous_period
from fake_lake import _to_arrow, write_table


def uad(lake) -> pd.DataFrame:
    d = lake.frames["user_activity_daily"].copy()
    d["activity_date"] = pd.to_datetime(d["activity_date"])
    return d


def expected_rolling(rows: pd.DataFrame, days: pd.DatetimeIndex, window: int) -> list[int]:
    """Brute force: distinct users with a row in [d-window+1, d]."""
    return [rows.loc[(rows.activity_date > d - pd.Timedelta(days=window)) & (rows.activity_date <= d),
                     "user_id"].nunique() for d in days]


def everyone(lake) -> Filters:
    """A filter that selects every country: same population as no filter, but computed path."""
    return Filters(preset="all", country=tuple(data.filter_options()["country"]))


# --------------------------------------------------------------------------- filters and the URL

def test_presets_resolve_relative_to_the_lakes_last_date(configured):
    first, last = configured.start, configured.end
    assert Filters(preset="7d").resolve(first, last) == (last - timedelta(days=6), last)
    assert Filters(preset="30d").resolve(first, last) == (last - timedelta(days=29), last)
    assert Filters(preset="month").resolve(first, last) == (last.replace(day=1), last)
    assert Filters(preset="all").resolve(first, last) == (first, last)
    # 90 days is longer than the lake: clipped to its first date
    assert Filters(preset="90d").resolve(first, last) == (first, last)


def test_custom_dates_are_clipped_to_the_lake_and_put_in_order(configured):
    first, last = configured.start, configured.end
    f = Filters(start=last + timedelta(days=5), end=first + timedelta(days=3))
    assert f.preset == "custom"
    assert f.resolve(first, last) == (first + timedelta(days=3), last)


@pytest.mark.parametrize("start, end", [("2023-01-01", "2023-02-01"),   # before the lake
                                        ("2025-01-01", "2025-02-01"),   # after it
                                        ("2025-01-01", None),           # from a date after the lake
                                        (None, "2023-02-01")])          # until a date before it
def test_a_range_outside_the_lake_stays_empty_and_never_becomes_a_real_one(configured, start, end):
    first, last = configured.start, configured.end
    f = Filters.from_params({k: v for k, v in (("start", start), ("end", end)) if v})
    assert f.is_empty_on(first, last)
    assert data.resolve(f) is None
    # what the date picker shows, read back by the callbacks, is still the same empty selection
    lo, hi = f.picker_dates(first, last)
    assert (lo and lo.isoformat(), hi and hi.isoformat()) == (start, end)
    again = Filters.from_inputs(lo, hi)
    assert again.is_empty_on(first, last) and data.resolve(again) is None
    for fn in (data.engagement, data.lifecycle, data.loyalty, data.revenue, data.sessions, data.kpis,
               data.funnel_steps, data.funnel_over_time, data.retention, data.pareto, data.segment_trend):
        assert fn(f) is None, fn.__name__
    for grain in ("week", "month"):
        assert data.engagement(Filters.from_inputs(lo, hi, grain=grain)) is None


def test_a_range_overlapping_the_lake_is_clipped_to_it(configured):
    first, last = configured.start, configured.end
    f = Filters(start=first - timedelta(days=10), end=first + timedelta(days=4))
    assert data.resolve(f) == (first, first + timedelta(days=4)) == f.picker_dates(first, last)


def test_url_values_that_are_not_understood_get_one_line_each():
    got = Filters.problems({"start": "2024-13-45", "end": ["yesterday"], "range": "fortnight", "grain": "hour"})
    assert got == ["Ignored start=2024-13-45: not a date (use YYYY-MM-DD).",
                   "Ignored end=yesterday: not a date (use YYYY-MM-DD).",
                   "Ignored range=fortnight: use one of 7d, 30d, 90d, month, all, custom.",
                   "Ignored grain=hour: use day, week or month."]
    assert Filters.problems({"start": "2024-01-05", "range": "7d", "grain": "week"}) == []


def test_filters_round_trip_through_the_url_query():
    f = Filters(preset="custom", start=date(2024, 1, 5), end=date(2024, 2, 1), grain="week",
                country=("FR", "DE"), device=("mobile",), gender=("female",), age_group=("25-34", "18-24"))
    q = f.to_query()
    assert q.startswith("?") and "country=DE,FR" in q and "age=18-24,25-34" in q and "grain=week" in q
    assert Filters.from_query(q) == f
    assert Filters().to_query() == ""  # defaults stay out of the URL
    assert Filters.from_query("?range=90d&grain=month") == Filters(preset="90d", grain="month")


def test_previous_period_has_equal_length_and_ends_the_day_before():
    lo, hi = date(2024, 3, 1), date(2024, 3, 10)
    plo, phi = previous_period(lo, hi)
    assert (phi - plo) == (hi - lo) and phi == lo - timedelta(days=1)


# --------------------------------------------------------------------------- distinct counts

def test_rolling_distinct_matches_brute_force_on_random_rows():
    rng = np.random.default_rng(0)
    user = np.sort(rng.integers(0, 50, 2000))
    day = rng.integers(0, 120, 2000)
    df = pd.DataFrame({"u": user, "d": day}).drop_duplicates().sort_values(["u", "d"])
    got = data.rolling_distinct(df.u.to_numpy(), df.d.to_numpy(), 7, 10, 119)
    want = [df[(df.d > d - 7) & (df.d <= d)].u.nunique() for d in range(10, 120)]
    assert got.tolist() == want


def test_unfiltered_daily_metrics_come_from_gold_engagement_daily(configured):
    e = data.engagement(Filters(preset="all"))
    gold = configured.frames["engagement_daily"]
    assert e["dau"].tolist() == gold["dau"].astype(float).tolist()
    assert e["mau"].tolist() == gold["mau"].astype(float).tolist()


def test_filtered_dau_counts_rows_of_user_activity_daily_that_pass_the_filter(configured):
    rows = uad(configured)
    f = Filters(preset="all", country=("DE",), device=("mobile",))
    e = data.engagement(f)
    sel = rows[(rows.country == "DE") & (rows.device == "mobile")]
    want = sel.groupby("activity_date").size().reindex(pd.to_datetime(e["period"]), fill_value=0)
    assert e["dau"].tolist() == want.astype(float).tolist()


def test_filtered_wau_counts_distinct_users_not_sum_of_days(configured):
    rows = uad(configured)
    f = Filters(preset="all", country=("DE", "FR"))
    e = data.engagement(f)
    sel = rows[rows.country.isin(["DE", "FR"])]
    days = pd.DatetimeIndex(e["period"])
    assert e["wau"].astype(int).tolist() == expected_rolling(sel, days, 7)
    # a sum of daily distincts would count a user active on several days several times
    summed = e["dau"].rolling(7, min_periods=1).sum()
    assert (summed > e["wau"]).any()


def test_filtered_mau_counts_distinct_users_in_30_day_window(configured):
    rows = uad(configured)
    f = Filters(preset="all", gender=("female",))
    e = data.engagement(f)
    sel = rows[rows.gender == "female"]
    assert e["mau"].astype(int).tolist() == expected_rolling(sel, pd.DatetimeIndex(e["period"]), 30)


def test_filter_matching_everyone_reproduces_gold_engagement(configured):
    computed = data.engagement(everyone(configured))
    gold = configured.frames["engagement_daily"]
    for col in ("dau", "wau", "mau", "new_active_users", "existing_active_users", "new_users"):
        assert computed[col].astype(int).tolist() == gold[col].astype(int).tolist(), col


def test_weekly_granularity_counts_distinct_users_in_the_week(configured):
    rows = uad(configured)
    f = Filters(preset="all", grain="week", device=("web",))
    e = data.engagement(f)
    sel = rows[rows.device == "web"]
    monday = sel.activity_date - pd.to_timedelta(sel.activity_date.dt.weekday, unit="D")
    want = sel.groupby(monday)["user_id"].nunique()
    got = pd.Series(e["active"].to_numpy(), index=pd.DatetimeIndex(e["period"]))
    assert got.astype(int).to_dict() == want.reindex(got.index, fill_value=0).astype(int).to_dict()


def test_monthly_granularity_matches_engagement_monthly_for_complete_months(configured):
    e = data.engagement(Filters(preset="all", grain="month", country=tuple(data.filter_options()["country"])))
    gold = configured.frames["engagement_monthly"]
    complete = gold[gold.is_complete]
    assert len(complete) >= 2
    for _, m in complete.iterrows():
        row = e[pd.to_datetime(e["period"]) == pd.Timestamp(m["month"])].iloc[0]
        assert row["active"] == m["mau"]
        assert row["new_active_users"] == m["new_active_users"]
        assert row["avg_dau"] == pytest.approx(m["avg_dau"])
        assert row["stickiness"] == pytest.approx(m["stickiness"])
        assert not row["partial"]


def test_month_not_fully_covered_is_marked_partial(configured):
    # the lake ends on 10 March: March is partial, like engagement_monthly.is_complete = false
    e = data.engagement(Filters(preset="all", grain="month"))
    last = e.iloc[-1]
    assert pd.Timestamp(last["period"]) == pd.Timestamp(2024, 3, 1) and bool(last["partial"])
    gold = configured.frames["engagement_monthly"]
    assert not bool(gold.iloc[-1]["is_complete"])
    assert not e.iloc[:-1]["partial"].any()


def test_week_cut_by_the_start_of_the_range_is_marked_partial(configured):
    # 2024-02-07 is a Wednesday: the first week of the range is not fully inside it
    f = Filters(start=date(2024, 2, 7), end=date(2024, 3, 10), grain="week")
    e = data.engagement(f)
    assert bool(e.iloc[0]["partial"]) and not e.iloc[1:-1]["partial"].any()
    assert not bool(e.iloc[-1]["partial"])  # 10 March 2024 is a Sunday: the last week is complete


def test_lifecycle_under_a_match_all_filter_equals_gold_lifecycle_daily(configured):
    computed = data.lifecycle(everyone(configured))
    gold = configured.frames["lifecycle_daily"]
    for col in ("new", "returning", "resurrecting", "dormant"):
        assert computed[col].fillna(-1).tolist() == gold[col].fillna(-1).tolist(), col


def test_lifecycle_new_returning_resurrecting_add_up_to_active_users(configured):
    f = Filters(preset="all", grain="week", country=("DE",))
    lc = data.lifecycle(f).set_index("period")
    e = data.engagement(f).set_index("period")
    both = lc.join(e[["active"]]).iloc[1:]  # the lake's first week has no lifecycle
    assert (both["new"] + both["returning"] + both["resurrecting"] == both["active"]).all()
    assert lc.iloc[0][["new", "returning", "resurrecting", "dormant"]].isna().all()


# --------------------------------------------------------------------------- KPIs and comparisons

def test_kpi_change_compares_with_the_previous_period_of_equal_length(configured):
    cards = {k.key: k for k in data.kpis(Filters(preset="30d"))}
    gold = configured.frames["engagement_daily"].set_index("activity_date")
    end = configured.end
    cur = gold.loc[end - timedelta(days=29): end, "dau"].mean()
    prev = gold.loc[end - timedelta(days=59): end - timedelta(days=30), "dau"].mean()
    assert cards["dau"].value == pytest.approx(cur)
    assert cards["dau"].previous == pytest.approx(prev)
    assert cards["dau"].change == pytest.approx((cur - prev) / prev)
    assert cards["mau"].value == gold.loc[end, "mau"]
    assert cards["mau"].previous == gold.loc[end - timedelta(days=30), "mau"]


def test_kpi_has_no_change_when_the_previous_period_is_outside_the_lake(configured):
    cards = data.kpis(Filters(preset="all"))
    assert cards and all(k.change is None for k in cards)


def test_active_users_kpi_counts_distinct_users_and_splits_new_from_existing(configured):
    rows = uad(configured)
    lo = configured.end - timedelta(days=29)
    sel = rows[rows.activity_date >= pd.Timestamp(lo)]
    card = {k.key: k for k in data.kpis(Filters(preset="30d"))}["active_users"]
    assert card.value == sel.user_id.nunique()
    users = configured.frames["users"].set_index("user_id")
    new = (pd.to_datetime(users.loc[sel.user_id.unique(), "first_seen_date"]) >= pd.Timestamp(lo)).sum()
    assert card.note.startswith(f"{new:,} new")


def test_conversion_kpi_is_distinct_buyers_over_distinct_active_users(configured):
    rows = uad(configured)
    lo = configured.end - timedelta(days=29)
    sel = rows[(rows.activity_date >= pd.Timestamp(lo)) & (rows.device == "mobile")]
    card = {k.key: k for k in data.kpis(Filters(preset="30d", device=("mobile",)))}["conversion_rate"]
    assert card.value == pytest.approx(sel[sel.purchases > 0].user_id.nunique() / sel.user_id.nunique())


def test_d7_retention_is_weighted_by_cohort_size(configured):
    lo, hi = date(2024, 1, 10), date(2024, 2, 10)
    r = configured.frames["retention_daily"]
    r = r[(pd.to_datetime(r.cohort_date) >= pd.Timestamp(lo)) & (pd.to_datetime(r.cohort_date) <= pd.Timestamp(hi))
          & (r.day_n == 7)]
    value, spark = data.d7_retention(Filters(), lo, hi)
    assert value == pytest.approx(r.retained_users.sum() / r.cohort_size.sum())
    assert len(spark) == (r.cohort_size > 0).sum()


# --------------------------------------------------------------------------- other pages' data

def test_retention_under_a_match_all_filter_equals_gold_retention(configured):
    f = Filters(preset="all", gender=tuple(data.filter_options()["gender"]))
    for cohort, name, key, n in (("day", "retention_daily", "cohort_date", "day_n"),
                                 ("week", "retention_weekly", "cohort_week", "week_n")):
        computed = data.retention(f, cohort).set_index(["cohort", "n"])
        gold = configured.frames[name]
        gold = gold[gold.cohort_size > 0].assign(cohort=pd.to_datetime(gold[key]), n=gold[n]).set_index(
            ["cohort", "n"])
        assert len(computed) == len(gold), cohort
        joined = gold.join(computed, rsuffix="_c")
        assert (joined["retained_users"] == joined["retained"]).all(), cohort
        assert (joined["cohort_size"] == joined["cohort_size_c"]).all(), cohort
        if cohort == "day":
            assert (joined["retained_users_unbounded"] == joined["retained_unbounded"]).all()


def test_demographics_for_the_last_30_days_without_filters_is_gold_demographics(configured):
    d = data.demographics(Filters(preset="30d"))
    g = configured.frames["demographics"]
    assert d["users"].sum() == g["users"].sum()
    assert d["active_users"].sum() == g["active_users_30d"].sum()
    assert d["new_users"].sum() == g["new_users_30d"].sum()


def test_demographics_under_a_filter_counts_distinct_active_users_in_the_range(configured):
    rows = uad(configured)
    d = data.demographics(Filters(preset="all", device=("mobile",)))
    assert d["active_users"].sum() == rows[rows.device == "mobile"].user_id.nunique()
    assert d["users"].sum() == len(configured.frames["users"])  # device does not restrict known users


def test_filtered_outstanding_points_are_cumulative_from_the_lake_start(configured):
    rows = uad(configured)
    f = Filters(preset="30d", country=("DE",))
    lo = configured.end - timedelta(days=29)
    loy = data.loyalty(f)
    sel = rows[rows.country == "DE"]
    want = (sel.points_earned - sel.points_redeemed).sum()
    assert loy["outstanding_points"].iloc[-1] == want
    before = sel[sel.activity_date < pd.Timestamp(lo)]
    first_day = sel[sel.activity_date == pd.Timestamp(lo)]
    assert loy["outstanding_points"].iloc[0] == (before.points_earned - before.points_redeemed).sum() + (
        first_day.points_earned - first_day.points_redeemed).sum()


def test_unfiltered_loyalty_is_gold_loyalty_daily(configured):
    loy = data.loyalty(Filters(preset="all"))
    gold = configured.frames["loyalty_daily"]
    assert loy["outstanding_points"].tolist() == gold["outstanding_points"].astype(float).tolist()
    assert loy["participation_rate"].round(9).fillna(-1).tolist() == gold["participation_rate"].round(9).fillna(
        -1).tolist()


def test_weekly_revenue_conversion_uses_distinct_buyers_over_distinct_active_users(configured):
    rows = uad(configured)
    rev = data.revenue(Filters(preset="all", grain="week"))
    monday = rows.activity_date - pd.to_timedelta(rows.activity_date.dt.weekday, unit="D")
    active = rows.groupby(monday).user_id.nunique()
    buyers = rows[rows.purchases > 0].groupby(monday).user_id.nunique().reindex(active.index, fill_value=0)
    got = pd.Series(rev["conversion_rate"].to_numpy(), index=pd.DatetimeIndex(rev["period"]))
    assert got.round(12).to_dict() == (buyers / active).round(12).to_dict()


def test_pareto_shares_are_cumulative_and_all_time_matches_user_revenue(configured):
    p = data.pareto(Filters(preset="all"))
    assert p["revenue_share"].is_monotonic_increasing and p["revenue_share"].iloc[-1] == pytest.approx(1.0)
    ur = configured.frames["user_revenue"]
    assert len(p) == (ur.revenue > 0).sum()
    assert p["revenue"].sum() == pytest.approx(ur.revenue.sum())
    shares = data.top_shares(p)
    assert shares[0.01] <= shares[0.1] <= shares[0.2] <= 1


def test_funnel_sums_users_over_the_range_and_applies_the_device_filter(configured):
    fd = configured.frames["funnel_daily"]
    steps = data.funnel_steps(Filters(preset="all", device=("web",)))
    want = fd[fd.device == "web"].groupby("step_index").users.sum()
    assert steps["users"].tolist() == want.astype(float).tolist()
    assert steps["overall_conversion"].iloc[0] == 1.0
    assert (steps["drop_off"].iloc[1:] == (steps["users"].shift(1) - steps["users"]).iloc[1:]).all()


def test_segments_under_a_demographic_filter_come_from_gold_users(configured):
    users = configured.frames["users"]
    s = data.segments(Filters(country=("DE",)))
    want = users[users.country == "DE"].segment.value_counts()
    assert s.set_index("segment")["users"].to_dict() == want.to_dict()


# --------------------------------------------------------------------------- users page

def test_users_page_searches_sorts_and_pages(configured):
    rows, total = data.users_page(Filters(), search="u0001", sort_by=[{"column_id": "revenue",
                                                                        "direction": "desc"}],
                                  page=0, page_size=5)
    assert total == sum("u0001" in u for u in configured.frames["users"].user_id)
    assert len(rows) == min(5, total)
    assert rows["revenue"].is_monotonic_decreasing


def test_users_page_filters_by_segment_cluster_and_demographics(configured):
    users = configured.frames["users"]
    _, total = data.users_page(Filters(country=("DE",)), segment="regular", cluster="1")
    assert total == ((users.country == "DE") & (users.segment == "regular") & (users.cluster == 1)).sum()


def test_users_are_never_shown_with_an_email(fresh_lake):
    users = fresh_lake.frames["users"].copy()
    users["email"] = [f"{u}@example.com" for u in users.user_id]
    write_table(fresh_lake.root, "gold", "users", pa.Table.from_pandas(users, preserve_index=False),
                schema_mode="overwrite")
    rows, _ = data.users_page(Filters())
    assert not any("email" in c for c in rows.columns)
    prof = data.user_profile(users.user_id.iloc[0])
    assert prof and not any("email" in k for k in prof)


def test_user_activity_returns_the_users_rows_in_the_range(configured):
    rows = uad(configured)
    uid = rows.user_id.value_counts().index[0]
    got = data.user_activity(uid, date(2024, 2, 1), configured.end)
    want = rows[(rows.user_id == uid) & (rows.activity_date >= pd.Timestamp(2024, 2, 1))]
    assert len(got) == len(want) and got["events"].sum() == want.events.sum()


# --------------------------------------------------------------------------- lake, cache, health

def test_a_new_delta_version_is_picked_up_without_a_restart(fresh_lake):
    f = Filters(preset="all")
    before = data.engagement(f)["dau"].sum()
    ed = fresh_lake.frames["engagement_daily"].copy()
    ed["dau"] = ed["dau"] + 1
    write_table(fresh_lake.root, "gold", "engagement_daily", _to_arrow("engagement_daily", ed))
    assert data.table_version("gold", "engagement_daily") == 1
    assert data.engagement(f)["dau"].sum() == before + len(ed)


def test_table_reads_are_cached_on_the_delta_version(configured):
    a = data.read_arrow("gold", "users")
    b = data.read_arrow("gold", "users")
    assert a is b  # same version: no second read


def test_missing_tables_give_empty_results_not_errors(tmp_path):
    from dashboard.config import configure
    from fake_lake import build_fake_lake

    lk = build_fake_lake(tmp_path / "partial", n_users=30, n_days=20,
                         skip=("funnel_daily", "retention_daily", "loyalty_daily", "loyalty_balances",
                               "sessions_daily", "cluster_profiles", "segment_summary"), with_runs=False)
    configure(lk.root, users={})
    data.clear_caches()
    f = Filters(preset="all")
    assert data.funnel_steps(f) is None
    assert data.retention(f) is None
    assert data.loyalty(f) is None and data.balances(f) is None
    assert data.sessions(f) is None
    assert data.reporting_timezone() == "UTC"
    assert data.kpis(f)  # what exists still works
    health = data.table_health()
    assert set(health[health.status == "missing"].table) >= {"funnel_daily", "retention_daily"}


def test_an_empty_lake_directory_has_no_data_and_no_errors(tmp_path):
    from dashboard.config import configure

    configure(tmp_path, users={})
    data.clear_caches()
    assert data.lake_bounds() is None
    assert data.kpis(Filters()) is None and data.engagement(Filters()) is None
    assert data.table_health()["status"].eq("missing").all()


def test_reporting_timezone_comes_from_the_latest_pipeline_run(configured):
    assert data.reporting_timezone() == configured.timezone == "Europe/Berlin"


def test_table_health_lists_version_rows_and_update_time(configured):
    h = data.table_health().set_index("table")
    assert h.loc["users", "rows"] == len(configured.frames["users"])
    assert h.loc["users", "version"] == 0 and h.loc["users", "status"] == "ok"
    assert h.loc["pipeline_runs", "layer"] == "ops"
    assert h.loc["users", "updated_at"] is not None
