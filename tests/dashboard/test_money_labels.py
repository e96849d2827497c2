"""Money on the dashboard names its currency; the per-currency breakdown and unconverted orders are shown."""

from __future__ import annotations

import sys

import pytest
from plotly.io.json import to_json_plotly

from dashboard import data
from dashboard.app import create_app
from dashboard.filters import Filters


@pytest.fixture()
def app(configured):
    return create_app(configured.root, users={}, warm=False)


def _page(name):
    return sys.modules[f"pages.{name}"]


def _args(lake):
    return (lake.start.isoformat(), lake.end.isoformat(), "week", [], [], [], [], "light")


def test_every_money_figure_on_the_revenue_page_names_the_reporting_currency(app, configured):
    assert data.reporting_currency() == "USD"
    cards, trend, arpu, _conv, _failed = _page("revenue").update_revenue(*_args(configured))
    text = to_json_plotly(cards)
    for label in ("Revenue", "ARPU", "ARPPU"):
        assert label in text
    assert text.count("USD") >= 3  # revenue, ARPU and ARPPU cards
    trend, arpu = trend.to_plotly_json(), arpu.to_plotly_json()
    assert "USD" in trend["layout"]["yaxis"]["title"]["text"]
    assert all("USD" in t["hovertemplate"] for t in trend["data"] if t["name"].startswith("Revenue"))
    assert "USD" in arpu["layout"]["yaxis"]["title"]["text"]
    assert all("USD" in t["hovertemplate"] for t in arpu["data"] if t.get("hovertemplate"))
    _device, pareto, _shares = _page("revenue").update_split(*_args(configured))
    assert "USD" in pareto.to_plotly_json()["layout"]["yaxis"]["title"]["text"]
    overview = to_json_plotly(_page("overview").update_kpis(*_args(configured)))
    assert "USD" in overview


def test_the_revenue_page_breaks_revenue_down_by_currency_sent(app, configured):
    by_cur = data.revenue_by_currency(Filters(preset="all"))
    gold = configured.frames["revenue_daily"]
    assert by_cur["revenue"].sum() == pytest.approx(gold["revenue"].sum(), abs=0.05)
    assert set(by_cur["currency"]) == {"USD", "EUR", "XYZ"}
    xyz = by_cur.set_index("currency").loc["XYZ"]
    assert not xyz["converted"] and xyz["unconverted_orders"] == xyz["orders"] > 0
    fig = _page("revenue").update_currency(*_args(configured)).to_plotly_json()
    bars = fig["data"][0]
    assert "XYZ (no rate)" in list(bars["y"]) and "USD" in fig["layout"]["xaxis"]["title"]["text"]
    assert "USD" in bars["hovertemplate"]


def test_the_health_page_shows_orders_left_out_for_want_of_a_rate(app, configured):
    out = _page("health").update_health(0, "light")
    cards, unconverted = to_json_plotly(out[0]), to_json_plotly(out[-1])
    bc = configured.frames["revenue_by_currency_daily"]
    n = int(bc[~bc["converted"]]["orders"].sum())
    assert n > 0
    assert "Orders without a rate" in cards and f"{n:,}" in cards and "XYZ" in cards
    assert "XYZ" in unconverted


def test_segment_and_user_tables_name_the_currency_of_revenue(app, configured):
    seg = to_json_plotly(_page("segments").update_segments(*_args(configured)))
    assert "Avg revenue (USD)" in seg
    users_layout = to_json_plotly(_page("users").layout())
    assert "Revenue (USD)" in users_layout
    user = configured.frames["user_revenue"]["user_id"].iloc[0]
    profile = to_json_plotly(_page("users").show_profile(user, configured.start.isoformat(),
                                                         configured.end.isoformat(), "light"))
    assert "USD" in profile
