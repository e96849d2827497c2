"""Funnel counts name their unit (entries vs distinct users), and entries whose
conversion window is not yet closed are left out of the conversion trend unless asked for."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd

from dashboard import data, figures
from dashboard.filters import Filters

from conftest import DAYS, START
from fake_lake import _to_arrow, write_table

LAST = START + timedelta(days=DAYS - 1)
FIRST_OPEN = LAST - timedelta(days=13)  # entry date + 14 days > LAST from here on


def test_funnel_counts_entries_and_distinct_users(configured):
    for f in (Filters(preset="all"), Filters(preset="all", device=("web",))):
        fd, fe = configured.frames["funnel_daily"], configured.frames["funnel_entries"]
        if f.device:
            fd, fe = fd[fd.device.isin(f.device)], fe[fe.device.isin(f.device)]
        steps = data.funnel_steps(f)
        # entries: user-days summed over the dates; distinct users: each user once per step reached
        assert steps["users"].tolist() == fd.groupby("step_index").users.sum().astype(float).tolist()
        best = fe.groupby("user_id").reached.max()
        assert steps["distinct_users"].tolist() == [float((best >= k).sum()) for k in range(1, 5)]
        assert (steps["distinct_users"] < steps["users"]).all()  # users enter on several dates
        assert steps["user_conversion"].iloc[-1] == steps["distinct_users"].iloc[-1] / steps["distinct_users"].iloc[0]
        open_days = fd[~fd.is_window_complete & (fd.step_index == 1)]
        assert steps["open_entries"].iloc[0] == open_days.users.sum() > 0


def test_distinct_users_count_a_user_at_the_furthest_step_of_any_entry(fresh_lake):
    # One user, two entries in range: one reached step 3, the other step 1 -> counted at steps 1-3.
    fe = pd.DataFrame({"activity_date": pd.to_datetime(["2024-01-02", "2024-01-05"]).date, "user_id": ["x", "x"],
                       "device": ["web", "web"], "reached": np.array([3, 1], np.int32),
                       "is_window_complete": [True, True]})
    write_table(fresh_lake.root, "gold", "funnel_entries", _to_arrow("funnel_entries", fe))
    data.clear_caches()
    got = data.funnel_distinct_users(Filters(preset="custom", start=START, end=START + timedelta(days=9)), 4)
    assert got.tolist() == [1.0, 1.0, 1.0, 0.0]


def test_conversion_trend_leaves_out_entries_whose_window_is_open(configured):
    fd = configured.frames["funnel_daily"]
    f = Filters(preset="all")
    default = data.funnel_over_time(f).set_index("period")
    included = data.funnel_over_time(f, include_open=True).set_index("period")
    open_dates = pd.DatetimeIndex(pd.to_datetime(fd.loc[~fd.is_window_complete, "activity_date"].unique()))
    assert open_dates.min() == pd.Timestamp(FIRST_OPEN)
    # By default the open dates have no entries and no rate; the closed ones are unchanged.
    assert (default.loc[open_dates, "entries"] == 0).all()
    assert default.loc[open_dates, "conversion_rate"].isna().all()
    assert not default["window_open"].any()
    first = fd[(fd.step_index == 1)].groupby("activity_date").users.sum()
    last = fd[(fd.step_index == 4)].groupby("activity_date").users.sum()
    day = pd.Timestamp(START + timedelta(days=20))
    assert default.loc[day, "conversion_rate"] == last.loc[day.date()] / first.loc[day.date()]
    assert default.loc[open_dates, "open_entries"].tolist() == first.loc[open_dates.date].astype(float).tolist()
    # Asked for, they count and are marked.
    assert included.loc[open_dates, "window_open"].all() and not included.drop(open_dates)["window_open"].any()
    assert included["entries"].sum() == first.sum()


def test_week_trend_uses_the_closed_days_of_a_week_only(configured):
    fd = configured.frames["funnel_daily"]
    weeks = data.funnel_over_time(Filters(preset="all", grain="week")).set_index("period")
    monday = pd.Timestamp(FIRST_OPEN - timedelta(days=FIRST_OPEN.weekday()))
    closed = fd[fd.is_window_complete & (fd.step_index == 1)
                & (pd.to_datetime(fd.activity_date) >= monday) & (pd.to_datetime(fd.activity_date) < monday + pd.Timedelta(days=7))]
    assert weeks.loc[monday, "entries"] == closed.users.sum()


def test_trend_figure_draws_open_windows_as_incomplete_and_notes_what_it_left_out(configured):
    f = Filters(preset="all")
    default = figures.funnel_rate(data.funnel_over_time(f)).to_plotly_json()
    note = " ".join(a["text"] for a in default["layout"].get("annotations", []))
    assert "whose window is not yet closed" in note and "Left out" in note
    assert not any("window not yet closed" in (t.get("name") or "") for t in default["data"])

    df = data.funnel_over_time(f, include_open=True)
    fig = figures.funnel_rate(df).to_plotly_json()
    main = fig["data"][0]
    win = df["window_open"].to_numpy(bool)
    assert all(y is None for y, w in zip(main["y"], win) if w)  # the solid line stops at the open dates
    marked = next(t for t in fig["data"] if (t.get("name") or "").endswith("(window not yet closed)"))
    assert "window not yet closed" in marked["hovertemplate"]
    assert [y is not None for y in marked["y"]] == win.tolist()
    dotted = [t for t in fig["data"] if t.get("line", {}).get("dash") == "dot"]
    assert dotted and "rgba(" in dotted[-1]["line"]["color"]  # lighter than the series colour


def test_trend_of_a_range_whose_windows_are_all_open_says_so(configured):
    f = Filters(preset="custom", start=FIRST_OPEN, end=LAST)
    fig = figures.funnel_rate(data.funnel_over_time(f)).to_plotly_json()
    assert "window not yet closed" in fig["layout"]["annotations"][0]["text"]
    assert fig["layout"]["meta"]["empty"]


def test_funnel_page_names_entries_and_distinct_users_and_toggles_open_windows(configured):
    import sys

    from dashboard.app import create_app

    create_app(configured.root, users={}, warm=False)
    page = sys.modules["pages.funnel"]  # the module Dash imported (importing it again would re-register)
    lo, hi = data.resolve(Filters(preset="all"))
    args = (lo.isoformat(), hi.isoformat(), "day", [], [], [], [], "light")
    cards, funnel_fig, _, table = page.update_funnel(*args)
    text = str([c.to_plotly_json() for c in cards])
    assert "entries (user-days)" in text and "distinct users" in text and "still inside the window" in text
    assert "Distinct users" in str([t.to_plotly_json() if hasattr(t, "to_plotly_json") else t for t in table])
    hover = funnel_fig.to_plotly_json()["data"][0]
    assert all("distinct user" in h for h in hover["hovertext"]) and "entries" in hover["hovertemplate"]
    off = page.update_trend(*args, False).to_plotly_json()
    on = page.update_trend(*args, True).to_plotly_json()
    assert not any("window not yet closed" in (t.get("name") or "") for t in off["data"])
    assert any("window not yet closed" in (t.get("name") or "") for t in on["data"])
