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
