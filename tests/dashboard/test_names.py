"""Issue 11, findings 6 and 8: one name per number, changes of rates in points, and the small things users hit."""

from __future__ import annotations

import pandas as pd
import pytest

from dashboard import components as c
from dashboard import data, figures
from dashboard.data import Kpi
from dashboard.definitions import DEFINITIONS, LABELS
from dashboard.filters import Filters


def _kpi(value, previous, fmt):
    return Kpi("x", "X", value, previous, pd.Series(dtype=float), fmt=fmt)


def test_a_change_of_a_rate_is_shown_in_percentage_points():
    k = _kpi(0.321, 0.273, "pct")  # D1 27.3 % -> 32.1 %
    assert k.change == pytest.approx(0.048)
    assert k.change_text == "+4.8 pp"
    assert _kpi(0.20, 0.25, "pct").change_text == "-5.0 pp"
    assert _kpi(0.10, 0.0, "pct").change_text == "+10.0 pp"  # from zero a rate still has a change in points
    assert _kpi(120.0, 100.0, "int").change_text == "+20.0%"  # counts keep their relative change
    assert _kpi(1.0, 0.0, "int").change_text == ""


def test_kpi_cards_show_rate_changes_in_points(configured):
    cards = {k.key: k for k in data.kpis(Filters(preset="30d"))}
    k = cards["stickiness"]
    assert k.change == pytest.approx(k.value - k.previous)
    badge = str(c.delta_badge(k, "prev. 30 days").to_plotly_json())
    assert " pp" in badge


def test_each_distinct_rate_has_its_own_name_and_definition(configured):
    # the range card, the per-period chart and the funnel no longer share "Conversion"
    rev = {k.key: k for k in data.revenue_kpis(Filters(preset="30d"))}
    ov = {k.key: k for k in data.kpis(Filters(preset="30d"))}
    card = rev["conversion_rate"]
    assert card.label == ov["conversion_rate"].label == "Buyer conversion (range)"
    assert card.definition_key == "range_conversion_rate" and DEFINITIONS["range_conversion_rate"]
    assert "of" in card.note and "active user" in card.note
    loy = {k.key: k for k in data.loyalty_kpis(Filters(preset="30d"))}
    assert loy["participation_rate"].label == "Participation (range)"
    assert loy["participation_rate"].definition_key == "range_participation_rate"
    assert ov["stickiness"].definition_key == "stickiness_avg"
    labels = {ov["conversion_rate"].label, loy["participation_rate"].label, LABELS["overall_conversion"]}
    df = data.revenue(Filters(preset="30d"))
    chart = figures.conversion(df, "day").to_plotly_json()
    assert chart["data"][0]["name"] == "Daily buyer conversion (buyers / DAU)"
    part = figures.participation(data.loyalty(Filters(preset="30d")), "day").to_plotly_json()
    assert part["data"][0]["name"] == "Daily participation (participants / DAU)"
    funnel = figures.funnel_rate(data.funnel_over_time(Filters(preset="30d")), "day").to_plotly_json()
    assert funnel["data"][0]["name"] == "Funnel conversion (entries)"
    names = labels | {chart["data"][0]["name"], part["data"][0]["name"]}
    assert len(names) == 5


@pytest.mark.parametrize("grain,name", [("day", "Stickiness (DAU / MAU)"),
                                        ("week", "Stickiness (DAU / MAU, week's average)"),
                                        ("month", "Monthly stickiness (avg DAU / month's active users)")])
def test_stickiness_names_the_quantity_drawn_at_each_granularity(configured, grain, name):
    fig = figures.stickiness(data.engagement(Filters(preset="all", grain=grain)), grain).to_plotly_json()
    assert fig["data"][0]["name"] == name
    assert fig["layout"]["yaxis"]["title"]["text"] == name


def test_paying_users_next_to_buyers_say_why_they_differ():
    assert c.paying_users_text(468, 472) == ("468 paying users in the range (revenue > 0) · 4 of the 472 buyers "
                                             "only had zero-amount orders")
    assert c.paying_users_text(1, 1) == "1 paying user in the range (revenue > 0)"
    assert "paying_users" in DEFINITIONS
