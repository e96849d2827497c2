"""One name per number, changes of rates in points, and the small things users hit."""

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


@pytest.fixture()
def app(configured):
    from dashboard.app import create_app

    return create_app(configured.root, users={}, warm=False)


def _page(name):
    import sys

    return sys.modules[f"pages.{name}"]  # the modules Dash imported (importing them again would re-register)


def _texts(node) -> str:
    return str(node if not hasattr(node, "to_plotly_json") else node.to_plotly_json())


def test_an_empty_filter_on_segments_says_so_not_that_the_pipeline_has_not_run(app, configured):
    segments = _page("segments")

    args = c.initial_args({"country": "ZZ"}, None)
    _, rows, _ = segments.update_segments(*args, "30d")
    text = _texts(rows)
    assert "No users in any segment for this filter" in text and "No segments yet" not in text


def test_segment_and_cluster_links_keep_the_current_filters(app, configured):
    segments = _page("segments")

    args = c.initial_args({"country": "DE", "gender": "female", "range": "90d", "grain": "week"}, None)
    _, rows, _ = segments.update_segments(*args, "90d")
    links = [x for x in _texts(rows).split("'") if x.startswith("/users?")]
    assert links and all("country=DE" in x and "gender=female" in x and "range=90d" in x and "grain=week" in x
                         and "segment=" in x for x in links), links
    f = Filters.from_inputs("2024-01-05", "2024-01-20")
    assert segments.users_link(f, "custom", segment="new") == "/users?start=2024-01-05&end=2024-01-20&segment=new"
    assert segments.users_link(f, "30d", cluster=2) == "/users?cluster=2"  # the default range needs no parameter


def test_counts_take_the_singular_for_one():
    from dashboard.wording import count

    assert count(1, "user") == "1 user" and count(2000, "user") == "2,000 users" and count(0, "user") == "0 users"
    assert count(1, "paying user") == "1 paying user" and count(3, "entry") == "3 entries"
    assert count(1, "day") == "1 day"


def test_one_day_ranges_and_one_row_lists_are_singular(configured):
    day = configured.end.isoformat()
    f = Filters.from_inputs(day, day)
    assert c.compare_label(f) == "prev. 1 day"
    assert c.range_caption(f, compare=True).endswith("(1 day) · changes vs the previous 1 day")


def test_users_page_says_1_user(app, configured):
    users = _page("users")

    uid = configured.frames["users"].user_id.iloc[0]
    _, _, label, _ = users.update_table(None, None, [], [], [], uid, None, None, 0, [])
    assert label == "1 user"


def test_users_list_can_be_limited_to_users_active_in_the_dates(configured):
    from datetime import timedelta

    rows = configured.frames["user_activity_daily"]
    lo = configured.end - timedelta(days=6)
    want = set(rows[pd.to_datetime(rows.activity_date) >= pd.Timestamp(lo)].user_id)
    f = Filters(preset="7d")
    _, total_all = data.users_page(f)
    page, total = data.users_page(f, page_size=10 ** 6, active_only=True)
    assert total == len(want) < total_all and set(page.user_id) == want


def test_users_page_says_what_the_list_holds(app, configured):
    users = _page("users")
    args = (configured.start.isoformat(), configured.start.isoformat(), [], [], [], "", None, None, 0, [])
    *_, count_all, scope_all = users.update_table(*args, False)
    *_, count_active, scope_active = users.update_table(*args, True)
    assert scope_all.startswith("All known users") and scope_active.startswith("Users active in")
    assert count_all != count_active


def _many_quizzes(n=238):
    import numpy as np

    rng = np.random.default_rng(1)
    att = rng.integers(1, 500, n)
    return pd.DataFrame({"quiz_id": [f"q{i:03d}" for i in range(n)], "attempts": att, "participants": att // 2,
                         "passes": att // 3, "pass_rate": (att // 3) / att})


def test_quiz_chart_shows_the_top_quizzes_and_pages_through_the_rest():
    df = _many_quizzes()
    assert figures.quiz_pages(df) == 16
    top = figures.quizzes(df).to_plotly_json()
    shown = top["data"][0]["x"]
    assert len(shown) == figures.QUIZ_PAGE_SIZE
    ranked = df.sort_values(["attempts", "quiz_id"], ascending=[False, True])
    assert list(shown) == ranked.quiz_id.head(15).tolist()
    assert top["layout"]["title"]["text"] == "Quizzes 1–15 of 238 by attempts"
    second = figures.quizzes(df, page=2).to_plotly_json()
    assert list(second["data"][0]["x"]) == ranked.quiz_id.iloc[15:30].tolist()
    last = figures.quizzes(df, page=99).to_plotly_json()  # past the end: the last page
    assert last["layout"]["title"]["text"] == "Quizzes 226–238 of 238 by attempts"
    assert len(figures.quizzes(df).csv["cols"][0]) == 238  # the CSV keeps every quiz


def test_sessions_page_pages_the_quizzes(app, configured):
    sessions = _page("sessions")

    args = c.initial_args({"range": "all"}, None)
    fig, pages = sessions.update_quizzes(*args, 1)
    assert pages == figures.quiz_pages(data.quizzes(Filters(preset="all")))


def test_dn_cards_fall_back_to_the_latest_cohorts_old_enough_and_say_so(configured):
    from datetime import timedelta

    from dashboard.data import cohort_window

    first, last = configured.start, configured.end
    # a 30-day range ending on the lake's last day has no cohort 30 days old: take the 30 cohorts before
    lo, hi = last - timedelta(days=29), last
    assert cohort_window(lo, hi, 30, first, last) == (last - timedelta(days=59), last - timedelta(days=30))
    assert cohort_window(lo, hi, 7, first, last) == (lo, last - timedelta(days=7))
    assert cohort_window(first, first + timedelta(days=3), 30, first, last) == (first, first + timedelta(days=3))
    assert cohort_window(lo, hi, 400, first, last) is None
    cards = {k.key: k for k in data.retention_kpis(Filters(preset="30d"))}
    d30 = cards["d30"]
    assert d30.value is not None  # the default view shows a D30
    clo, chi = last - timedelta(days=59), last - timedelta(days=30)
    assert d30.note.startswith(f"cohorts {clo:%d %b} – {chi:%d %b %Y}")
    rd = configured.frames["retention_daily"]
    rd = rd[(rd.day_n == 30) & (pd.to_datetime(rd.cohort_date) >= pd.Timestamp(clo))
            & (pd.to_datetime(rd.cohort_date) <= pd.Timestamp(chi))]
    assert d30.value == pytest.approx(rd.retained_users.sum() / rd.cohort_size.sum())
    assert cards["d1"].note == ""  # D1 uses the range's own cohorts


def test_a_missing_kpi_value_is_not_printed_twice():
    k = _kpi(None, None, "pct")
    assert _texts(c.delta_badge(k, "prev. 30 days")).count("—") == 0


def test_chart_hovers_say_1_user():
    hist = figures.balance_histogram(pd.DataFrame({"balance": [0.0, 0.0, 100.0]}), bins=2).to_plotly_json()
    assert list(hist["data"][0]["hovertext"]) == ["2 users", "1 user"]
    sizes = figures.segment_sizes(pd.DataFrame({"segment": ["a", "b"], "users": [1, 3], "share": [0.25, 0.75]}))
    assert sorted(sizes.to_plotly_json()["data"][0]["hovertext"]) == ["1 user", "3 users"]


def test_funnel_counts_are_called_entries_not_users(configured):
    f = Filters(preset="30d")
    dev = figures.funnel_by_device(data.funnel_by_device(f)).to_plotly_json()
    assert all(h.endswith(("entry", "entries")) for t in dev["data"] for h in t["hovertext"])
    assert dev["layout"]["yaxis"]["title"]["text"] == "Funnel conversion (entries)"
    assert figures.funnel(data.funnel_steps(f)).to_plotly_json()["layout"]["yaxis"]["title"]["text"] == \
        "entries (user-days)"
