"""Figure functions: data carried for CSV, empty states, partial periods, colours, hover formats, JSON."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest
from plotly.io.json import to_json_plotly

from dashboard import data, figures
from dashboard.filters import Filters
from dashboard.theme import SERIES


def _engagement(grain="day", **kw):
    return data.engagement(Filters(preset="all", grain=grain, **kw))


def all_figures(lake) -> dict:
    """One figure of every kind, built from the fake lake."""
    f, fw = Filters(preset="all"), Filters(preset="all", grain="week")
    ret = data.retention(f)
    return {
        "active_users": figures.active_users(_engagement(), "day"),
        "active_users_week": figures.active_users(_engagement("week"), "week"),
        "stickiness": figures.stickiness(_engagement("month"), "month"),
        "new_vs_existing": figures.new_vs_existing(_engagement("week"), "week"),
        "lifecycle": figures.lifecycle(data.lifecycle(fw), "week"),
        "by_gender": figures.by_dimension(data.demographics(f), "gender"),
        "by_country": figures.by_dimension(data.demographics(f), "country", top=5, horizontal=True),
        "heatmap": figures.demographic_heatmap(data.demographics(f)),
        "points": figures.points(data.loyalty(fw), "week"),
        "outstanding": figures.outstanding(data.loyalty(f)),
        "participation": figures.participation(data.loyalty(f)),
        "balances": figures.balance_histogram(data.balances(f)),
        "revenue": figures.revenue_orders(data.revenue(fw), "week"),
        "arpu": figures.arpu(data.revenue(f)),
        "conversion": figures.conversion(data.revenue(f)),
        "conversion_device": figures.conversion_by_device(data.conversion_by_device(f)),
        "failed": figures.failed_payments(data.revenue(f)),
        "pareto": figures.pareto(data.pareto(f)),
        "retention_heatmap": figures.retention_heatmap(ret),
        "retention_curve": figures.retention_curve(data.retention_curve(ret)),
        "funnel": figures.funnel(data.funnel_steps(f)),
        "funnel_device": figures.funnel_by_device(data.funnel_by_device(f)),
        "funnel_rate": figures.funnel_rate(data.funnel_over_time(f)),
        "sessions": figures.sessions(data.sessions(f)),
        "session_length": figures.session_length(data.sessions(f)),
        "top_events": figures.top_bar(data.top_events(f), "event", "events", "events", "events"),
        "hourly": figures.hourly_heatmap(data.hourly("purchase"), "purchases"),
        "quizzes": figures.quizzes(data.quizzes(f)),
        "courses": figures.course_completion(data.courses()),
        "segments": figures.segment_sizes(data.segments(f)),
        "segment_trend": figures.segment_trend(data.segment_trend(fw), "week"),
        "clusters": figures.cluster_scatter(data.cluster_points(f)),
        "quarantine": figures.quarantine(data.quarantine()),
        "durations": figures.durations(data.run_durations(data.last_run())),
        "user_activity": figures.user_activity(data.user_activity(lake.frames["users"].user_id.iloc[0])),
    }


def test_every_figure_carries_its_data_as_csv_and_serialises(configured):
    for name, fig in all_figures(configured).items():
        assert fig.data, name
        csv = figures.csv_of(fig)
        assert csv and csv["columns"] and len(csv["columns"]) == len(csv["cols"]), name
        assert len({len(c) for c in csv["cols"]}) == 1, name
        out = to_json_plotly(fig)
        assert '"meta"' in out and "NaN" not in out, name


def test_empty_or_missing_data_gives_a_message_not_a_broken_chart():
    empty = pd.DataFrame(columns=["period", "dau", "wau", "mau", "active", "partial"])
    for fig in (figures.active_users(None), figures.active_users(empty), figures.lifecycle(None),
                figures.funnel(None), figures.retention_heatmap(None), figures.cluster_scatter(None),
                figures.pareto(pd.DataFrame()), figures.hourly_heatmap(None, "x")):
        j = fig.to_plotly_json()
        assert j["data"] == []
        assert j["layout"]["annotations"][0]["text"] == figures.NO_DATA or "No" in j["layout"]["annotations"][0]["text"]
        assert j["layout"]["xaxis"]["visible"] is False
    m = figures.missing("funnel_daily").to_plotly_json()
    assert "gold.funnel_daily does not exist yet" in m["layout"]["annotations"][0]["text"]


def test_partial_periods_are_drawn_dotted_and_shaded(configured):
    e = _engagement("month")
    assert e["partial"].iloc[-1]
    fig = figures.active_users(e, "month").to_plotly_json()
    dotted = [t for t in fig["data"] if t.get("line", {}).get("dash") == "dot"]
    assert dotted, "a dotted segment leads to the partial point"
    solid = fig["data"][0]["y"]
    assert solid[-1] is None and solid[-2] is not None  # the solid line stops before the partial month
    assert any(t["name"].endswith("(partial)") for t in fig["data"])
    shapes = fig["layout"]["shapes"]
    # the band is centred on the partial month's point (drawn at 1 March) and a month wide
    assert len(shapes) == 1
    x0, x1 = pd.Timestamp(shapes[0]["x0"]), pd.Timestamp(shapes[0]["x1"])
    assert x0 < pd.Timestamp("2024-03-01") < x1 and x1 - x0 == pd.Timedelta(days=31)
    assert pd.Timestamp("2024-03-01") - x0 == x1 - pd.Timestamp("2024-03-01")
    assert any(a["text"] == "partial" for a in fig["layout"]["annotations"])


def _rgb(color: str) -> tuple[int, int, int]:
    if color.startswith("#"):
        return tuple(int(color[i:i + 2], 16) for i in (1, 3, 5))
    return tuple(int(float(v)) for v in color[color.index("(") + 1:color.index(")")].split(",")[:3])


@pytest.mark.parametrize("grain", ["week", "month"])
def test_partial_bars_keep_their_series_colour_and_say_partial(configured, grain):
    # from Wednesday 10 January: the first week/month is partial, and so is the lake's last month
    e = data.engagement(Filters(start="2024-01-10", end="2024-03-10", grain=grain))
    part = e["partial"].to_numpy(bool)
    assert part[0] and (grain == "week" or part[-1])
    fig = figures.new_vs_existing(e, grain).to_plotly_json()
    for name, key in (("Existing", "existing_active_users"), ("New", "new_active_users")):
        color = SERIES[key]
        full = next(t for t in fig["data"] if t["name"] == name)
        partial = next(t for t in fig["data"] if t["name"] == f"{name} (partial)")
        # the legend entry (the full periods' trace) is one solid swatch of the series colour
        assert full["marker"]["color"] == color and "pattern" not in full["marker"]
        assert full.get("showlegend", True) and "opacity" not in full["marker"]
        # the partial bars: a lighter tint of the same colour, hatched and outlined in that colour
        assert partial["showlegend"] is False and partial["legendgroup"] == full["legendgroup"] == name
        assert _rgb(partial["marker"]["color"]) == _rgb(color) and partial["marker"]["color"].startswith("rgba(")
        assert partial["marker"]["pattern"]["fgcolor"] == color
        assert partial["marker"]["pattern"]["fillmode"] == "overlay"
        assert partial["marker"]["line"]["color"] == color
        assert "(partial)" in partial["hovertemplate"] and "(partial)" not in full["hovertemplate"]
        # each period is drawn once: by the full trace or by the partial one
        for i, p in enumerate(part):
            assert (full["y"][i] is None) == bool(p) and (partial["y"][i] is None) == (not p)
        want = e[key].to_numpy(float)
        assert [a if a is not None else b for a, b in zip(full["customdata"], partial["customdata"])] == want.tolist()


def test_grouped_partial_bars_share_their_series_slot(configured):
    fig = figures.points(data.loyalty(Filters(preset="all", grain="month")), "month").to_plotly_json()
    bars = {t["name"]: t for t in fig["data"] if t["type"] == "bar"}
    assert bars["Earned"]["offsetgroup"] == bars["Earned (partial)"]["offsetgroup"] == "Earned"
    assert bars["Redeemed"]["offsetgroup"] == bars["Redeemed (partial)"]["offsetgroup"] == "Redeemed"
    # plotly groups bars by default: a single series' partial bar must not take a slot of its own either
    fig = figures.revenue_orders(data.revenue(Filters(preset="all", grain="month")), "month").to_plotly_json()
    bars = {t["name"]: t for t in fig["data"] if t["type"] == "bar"}
    assert bars["Revenue"]["offsetgroup"] == bars["Revenue (partial)"]["offsetgroup"]


def test_day_granularity_has_no_partial_marks(configured):
    fig = figures.active_users(_engagement("day"), "day").to_plotly_json()
    assert "shapes" not in fig["layout"]
    assert [t["name"] for t in fig["data"]] == ["DAU", "WAU", "MAU"]


def test_dormant_is_drawn_below_zero_with_its_positive_value_in_the_hover(configured):
    lc = data.lifecycle(Filters(preset="all"))
    fig = figures.lifecycle(lc).to_plotly_json()
    dormant = next(t for t in fig["data"] if t["name"] == "Dormant")
    ys = [y for y in dormant["y"] if y is not None]
    assert ys and all(y <= 0 for y in ys)
    assert all(c is None or c >= 0 for c in dormant["customdata"])
    assert fig["layout"]["barmode"] == "relative"


def test_a_series_keeps_its_colour_on_every_chart(configured):
    f = Filters(preset="all")
    a = figures.active_users(data.engagement(f)).to_plotly_json()
    dau = next(t for t in a["data"] if t["name"] == "DAU")
    assert dau["line"]["color"] == SERIES["dau"]
    rev1 = figures.revenue_orders(data.revenue(f)).to_plotly_json()
    rev2 = figures.pareto(data.pareto(f)).to_plotly_json()
    assert rev1["data"][0]["marker"]["color"] == rev2["data"][0]["line"]["color"] == SERIES["revenue"]


def test_hover_shows_exact_values(configured):
    fig = figures.active_users(_engagement()).to_plotly_json()
    assert ",.0f" in fig["data"][0]["hovertemplate"]
    st = figures.stickiness(_engagement()).to_plotly_json()
    assert ".1%" in st["data"][0]["hovertemplate"]
    assert fig["layout"]["hovermode"] == "x unified"


def test_dark_theme_uses_light_text_and_transparent_background():
    light = figures.empty(theme="light").to_plotly_json()["layout"]["template"]["layout"]
    dark = figures.empty(theme="dark").to_plotly_json()["layout"]["template"]["layout"]
    assert dark["font"]["color"] != light["font"]["color"]
    assert dark["paper_bgcolor"] == "rgba(0,0,0,0)"
    assert dark["hoverlabel"]["bgcolor"] != light["hoverlabel"]["bgcolor"]


def test_funnel_shows_reached_users_and_drop_off(configured):
    steps = data.funnel_steps(Filters(preset="all"))
    fig = figures.funnel(steps).to_plotly_json()
    reached, dropped = fig["data"]
    assert reached["y"] == steps["users"].tolist()
    assert dropped["y"] == steps["drop_off"].tolist()
    assert reached["text"][0].endswith("100.0%")


def test_retention_heatmap_shows_counts_or_rates(configured):
    ret = data.retention(Filters(preset="all"))
    rates = figures.retention_heatmap(ret, "rate").to_plotly_json()["data"][0]
    counts = figures.retention_heatmap(ret, "count").to_plotly_json()["data"][0]
    assert rates["zmax"] == 1 and np.nanmax(np.array(rates["z"], dtype=float)) <= 1
    assert np.nanmax(np.array(counts["z"], dtype=float)) > 1
    assert rates["x"][0] == "D0"


def test_jsonable_turns_dates_and_nan_into_json_values():
    assert figures.jsonable(pd.Series(pd.to_datetime(["2024-01-01", None]))) == ["2024-01-01", None]
    assert figures.jsonable(np.array([1.5, np.nan, np.inf])) == [1.5, None, None]
    assert figures.jsonable(np.array([1, 2])) == [1, 2]


def test_sparkline_svg_is_valid_and_breaks_at_gaps():
    s = pd.Series([1.0, 2.0, np.nan, 3.0, 4.0], index=pd.date_range("2024-01-01", periods=5))
    svg = figures.sparkline_svg(s, "#3b82f6")
    root = ET.fromstring(svg)
    lines = [e for e in root if e.tag.endswith("polyline")]
    assert len(lines) == 2
    assert figures.sparkline_svg(None, "#000").startswith("<svg")


@pytest.mark.parametrize("grain", ["day", "week", "month"])
def test_time_series_figures_work_at_every_granularity(configured, grain):
    f = Filters(preset="all", grain=grain, country=("DE",))
    for fig in (figures.active_users(data.engagement(f), grain), figures.lifecycle(data.lifecycle(f), grain),
                figures.points(data.loyalty(f), grain), figures.revenue_orders(data.revenue(f), grain),
                figures.sessions(data.sessions(f), grain), figures.funnel_rate(data.funnel_over_time(f), grain)):
        to_json_plotly(fig)
        assert fig.data


TIME_FIGURES = {
    "active_users": lambda f: figures.active_users(data.engagement(f), f.grain),
    "stickiness": lambda f: figures.stickiness(data.engagement(f), f.grain),
    "new_vs_existing": lambda f: figures.new_vs_existing(data.engagement(f), f.grain),
    "lifecycle": lambda f: figures.lifecycle(data.lifecycle(f), f.grain),
    "points": lambda f: figures.points(data.loyalty(f), f.grain),
    "outstanding": lambda f: figures.outstanding(data.loyalty(f), f.grain),
    "participation": lambda f: figures.participation(data.loyalty(f), f.grain),
    "revenue": lambda f: figures.revenue_orders(data.revenue(f), f.grain),
    "arpu": lambda f: figures.arpu(data.revenue(f), f.grain),
    "conversion": lambda f: figures.conversion(data.revenue(f), f.grain),
    "conversion_device": lambda f: figures.conversion_by_device(data.conversion_by_device(f), f.grain),
    "failed": lambda f: figures.failed_payments(data.revenue(f), f.grain),
    "funnel_rate": lambda f: figures.funnel_rate(data.funnel_over_time(f), f.grain),
    "sessions": lambda f: figures.sessions(data.sessions(f), f.grain),
    "session_length": lambda f: figures.session_length(data.sessions(f), f.grain),
    "segment_trend": lambda f: figures.segment_trend(data.segment_trend(f), f.grain),
}


@pytest.mark.parametrize("name", sorted(TIME_FIGURES))
def test_month_and_week_axes_have_one_tick_per_period_labelled_as_such(configured, name):
    month = TIME_FIGURES[name](Filters(preset="all", grain="month")).to_plotly_json()
    ax = month["layout"]["xaxis"]
    assert ax["tickmode"] == "array"
    assert ax["tickvals"] == ["2024-01-01", "2024-02-01", "2024-03-01"]
    assert ax["ticktext"] == ["Jan<br>2024", "Feb", "Mar"]
    # every bar / point sits on its period's tick
    xs = {x for t in month["data"] for x in t.get("x", []) if x is not None}
    assert xs <= set(ax["tickvals"])

    week = TIME_FIGURES[name](Filters(preset="all", grain="week")).to_plotly_json()
    ax = week["layout"]["xaxis"]
    mondays = pd.date_range("2024-01-01", "2024-03-04", freq="W-MON")
    assert ax["tickvals"] == [d.strftime("%Y-%m-%d") for d in mondays]  # one tick per week, 10 weeks
    # 10 weeks: every other tick labelled (5 labels fit a one-third-width card)
    assert ax["ticktext"][0] == "2024-W01<br>1 Jan" and ax["ticktext"][2] == "W03<br>15 Jan"
    assert ax["ticktext"][1::2] == [""] * 5
    assert all(re.match(r"^(\d{4}-)?W\d\d<br>\d+ [A-Z][a-z]{2}$", t) for t in ax["ticktext"][::2])


def test_long_ranges_keep_one_tick_per_week_but_label_every_kth():
    periods = pd.date_range("2025-01-06", periods=53, freq="W-MON")
    vals, text = figures.period_ticks(periods, "week")
    assert len(vals) == 53 and vals[0] == "2025-01-06"
    labelled = [t for t in text if t]
    assert 4 <= len(labelled) <= figures.MAX_PERIOD_LABELS["week"]
    assert text[0] == "2025-W02<br>6 Jan"
    # the ISO year is repeated where it changes (week 1 of 2026 starts on Monday 29 Dec 2025)
    vals, text = figures.period_ticks(pd.date_range("2025-12-22", periods=3, freq="W-MON"), "week")
    assert text == ["2025-W52<br>22 Dec", "2026-W01<br>29 Dec", "W02<br>5 Jan"]
    _, text = figures.period_ticks(pd.date_range("2025-11-01", periods=4, freq="MS"), "month")
    assert text == ["Nov<br>2025", "Dec", "Jan<br>2026", "Feb"]
    _, text = figures.period_ticks(pd.date_range("2025-01-01", periods=12, freq="MS"), "month")
    assert text == ["Jan<br>2025", "", "Mar", "", "May", "", "Jul", "", "Sep", "", "Nov", ""]


def test_day_axes_keep_plotlys_date_ticks(configured):
    fig = figures.active_users(_engagement("day"), "day").to_plotly_json()
    assert "tickvals" not in fig["layout"].get("xaxis", {})
