"""The gold catalogue: every gold table declared once.

Each entry gives the table's name and metric family, its grain (the columns that identify a row;
`conf/base/expectations.yaml` carries the matching `unique` rule, tests/test_catalog.py keeps the
two equal), the columns dashboards filter it by, its ZORDER columns, whether it carries money, and
how it is built: `full` builds it from the inputs of a full build (`lakehouse.gold.FullInputs`),
`rebuild` from the inputs of an incremental run (`lakehouse.gold_scope.Rebuild`), and `scope` names
the rows an incremental run replaces (SCOPES). Both builders call the same family transform
(`lakehouse/transforms/<family>.py`); only their inputs differ.

Read by the full and the incremental build (`lakehouse.gold`), the expectation checks (through
the grain), maintenance (ZORDER), the table registry (`lakehouse.tables.GOLD`) and the dashboard.
Adding a gold table: one entry here, one transform in its family module, one test, and a page
if it has one (docs/architecture.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from lakehouse.transforms import (
    content,
    demographics,
    engagement,
    funnel,
    health,
    lifecycle,
    loyalty,
    retention,
    revenue,
    sessions,
    users,
)

# Which rows an incremental run replaces, by scope name (the predicate is built by
# `lakehouse.gold_scope.Rebuild.predicate`; "since" is the first date the new data can change).
SCOPES = {
    "whole": "the whole table (small tables, or per-user and all-time tables)",
    "dates": "rows with activity_date on or after `since`",
    "months": "rows with month on or after the month of `since`",
    "funnel": "funnel entries whose window reaches `since` or was still open at the previous last date",
    "cohorts": "cohorts within max_day days before `since`, plus cohorts whose members moved",
    "weeks": "weekly cohorts within max_week weeks before `since`, plus weeks whose members moved",
    "event_dates": "dates on or after `since`, plus every date of an event name seen for the first time",
    "relabel": "dates on or after `since`, plus the rows of users whose attributes changed (all rows when too many)",
}


@dataclass(frozen=True)
class GoldTable:
    """One gold table: what identifies a row, how dashboards filter it, and how it is built."""

    name: str
    family: str
    grain: tuple[str, ...]
    full: Callable[[Any], Any]      # FullInputs -> DataFrame
    rebuild: Callable[[Any], Any]   # Rebuild -> DataFrame holding exactly the rows `scope` replaces
    scope: str = "whole"
    date_column: str | None = None  # the column the dashboard's date range filters
    dimensions: tuple[str, ...] = ()  # other columns the dashboard filters by
    zorder: tuple[str, ...] = ()
    money: bool = False             # carries amounts: gets a `reporting_currency` column

    def __post_init__(self) -> None:
        if self.scope not in SCOPES:
            raise ValueError(f"gold.{self.name}: unknown scope {self.scope!r} (known: {', '.join(SCOPES)})")


GOLD_TABLES: tuple[GoldTable, ...] = (
    # engagement
    GoldTable("engagement_daily", "engagement", ("activity_date",), scope="dates", date_column="activity_date",
              full=lambda x: x.daily, rebuild=lambda r: r.daily),
    GoldTable("engagement_monthly", "engagement", ("month",), scope="months", date_column="month",
              full=lambda x: engagement.engagement_monthly(x.days, x.users, x.daily, x.rng),
              rebuild=lambda r: engagement.engagement_monthly(r.month_days, r.users, r.month_dau, r.rng)),
    # lifecycle
    GoldTable("lifecycle_daily", "lifecycle", ("activity_date",), scope="dates", date_column="activity_date",
              full=lambda x: lifecycle.lifecycle_daily(x.cal, x.neighbours, x.users, x.rng),
              rebuild=lambda r: lifecycle.lifecycle_daily(r.cal, r.lifecycle_neighbours, r.users, r.rng)),
    # demographics
    GoldTable("demographics", "demographics", ("gender", "age_group", "country"),
              full=lambda x: demographics.demographics(x.users, x.rng, x.cfg["demographics"]["window_days"]),
              rebuild=lambda r: demographics.demographics(r.users, r.rng, r.cfg["demographics"]["window_days"])),
    # loyalty
    GoldTable("loyalty_daily", "loyalty", ("activity_date",), scope="dates", date_column="activity_date",
              full=lambda x: loyalty.loyalty_daily(x.cal, x.points, x.daily),
              rebuild=lambda r: loyalty.loyalty_daily(r.cal, loyalty.loyalty_events(r.ev), r.daily, r.opening_points)),
    GoldTable("loyalty_balances", "loyalty", ("user_id",),
              full=lambda x: x.balances, rebuild=lambda r: r.balances),
    # users
    GoldTable("user_activity_daily", "users", ("user_id", "activity_date"), scope="relabel",
              date_column="activity_date", dimensions=("country", "device", "gender", "age_group"),
              zorder=("activity_date", "country"), money=True,
              full=lambda x: users.user_activity_daily(x.days, x.users),
              rebuild=lambda r: users.user_activity_daily(r.relabelled_days, r.users)),
    GoldTable("users", "users", ("user_id",), dimensions=("country", "gender", "age_group", "segment"),
              zorder=("country", "segment"), money=True,
              full=lambda x: x.segmented[0], rebuild=lambda r: r.segmented[0]),
    # retention
    GoldTable("retention_daily", "retention", ("cohort_date", "day_n"), scope="cohorts", date_column="cohort_date",
              full=lambda x: retention.retention_daily(x.cal, x.users, x.days, x.rng, x.cfg["retention"]["max_day"]),
              rebuild=lambda r: retention.retention_daily(r.cohort_cal, r.cohort_members, r.cohort_days, r.rng,
                                                          r.cfg["retention"]["max_day"])),
    GoldTable("retention_weekly", "retention", ("cohort_week", "week_n"), scope="weeks", date_column="cohort_week",
              full=lambda x: retention.retention_weekly(x.cal, x.users, x.days, x.rng, x.cfg["retention"]["max_week"]),
              rebuild=lambda r: retention.retention_weekly(r.week_cal, r.week_members, r.week_days, r.rng,
                                                           r.cfg["retention"]["max_week"])),
    # funnel
    GoldTable("funnel_daily", "funnel", ("activity_date", "device", "step_index"), scope="funnel",
              date_column="activity_date", dimensions=("device",), zorder=("activity_date", "device"),
              full=lambda x: funnel.funnel_daily(x.active, x.rng.end, x.cfg["funnel"]["steps"],
                                                 x.cfg["funnel"]["window_days"], x.entries),
              rebuild=lambda r: funnel.funnel_daily(None, r.rng.end, r.cfg["funnel"]["steps"],
                                                    r.cfg["funnel"]["window_days"], r.entries)),
    GoldTable("funnel_entries", "funnel", ("user_id", "activity_date"), scope="funnel", date_column="activity_date",
              dimensions=("device",), full=lambda x: x.entries, rebuild=lambda r: r.entries),
    # revenue
    GoldTable("revenue_daily", "revenue", ("activity_date",), scope="dates", date_column="activity_date", money=True,
              full=lambda x: revenue.revenue_daily(x.cal, x.money, x.days),
              rebuild=lambda r: revenue.revenue_daily(r.cal, r.money, r.recent_days)),
    GoldTable("user_revenue", "revenue", ("user_id",), money=True,
              full=lambda x: revenue.user_revenue(x.money),
              rebuild=lambda r: revenue.add_user_revenue(r.prev.read("user_revenue").drop("reporting_currency"),
                                                         revenue.user_revenue(r.new_money))),
    GoldTable("revenue_by_currency_daily", "revenue", ("activity_date", "currency"), scope="dates",
              date_column="activity_date", money=True,
              full=lambda x: revenue.revenue_by_currency_daily(x.money),
              rebuild=lambda r: revenue.revenue_by_currency_daily(r.money)),
    # sessions
    GoldTable("sessions_daily", "sessions", ("activity_date",), scope="dates", date_column="activity_date",
              full=lambda x: sessions.sessions_daily(x.cal, x.sessions, x.cfg["timezone"]),
              rebuild=lambda r: sessions.sessions_daily(r.cal, r.recent_sessions, r.cfg["timezone"])),
    # content
    GoldTable("event_counts_daily", "content", ("activity_date", "event"), scope="event_dates",
              date_column="activity_date", zorder=("activity_date", "event"),
              full=lambda x: content.event_counts_daily(x.cal, x.events, x.rng),
              rebuild=lambda r: r.event_counts),
    GoldTable("page_views_daily", "content", ("activity_date", "page"), scope="dates", date_column="activity_date",
              full=lambda x: content.page_views_daily(x.active, x.rng),
              rebuild=lambda r: content.page_views_daily(r.active, r.rng)),
    GoldTable("hourly_activity", "content", ("event", "day_of_week", "hour"),
              full=lambda x: content.hourly_activity(x.events),
              rebuild=lambda r: content.add_hourly_activity(r.prev.read("hourly_activity"),
                                                            content.hourly_activity(r.new))),
    GoldTable("quiz_daily", "content", ("activity_date", "quiz_id"), scope="dates", date_column="activity_date",
              full=lambda x: content.quiz_daily(x.active, x.rng),
              rebuild=lambda r: content.quiz_daily(r.active, r.rng)),
    GoldTable("course_progress", "content", ("course_id",),
              full=lambda x: content.course_progress(x.active),
              rebuild=lambda r: content.course_progress(r.course_events)),
    # segments
    GoldTable("segment_summary", "segments", ("segment",), money=True,
              full=lambda x: x.segmented[1], rebuild=lambda r: r.segmented[1]),
    GoldTable("cluster_profiles", "segments", ("cluster",), money=True,
              full=lambda x: x.segmented[2], rebuild=lambda r: r.segmented[2]),
    # health
    GoldTable("quarantine_summary", "health", ("feed", "reason"),
              full=lambda x: health.quarantine_summary(x.quarantine),
              rebuild=lambda r: health.quarantine_summary(r.quarantine)),
)

BY_NAME: dict[str, GoldTable] = {t.name: t for t in GOLD_TABLES}
NAMES: tuple[str, ...] = tuple(BY_NAME)
MONEY_TABLES: tuple[str, ...] = tuple(t.name for t in GOLD_TABLES if t.money)
FAMILIES: tuple[str, ...] = tuple(dict.fromkeys(t.family for t in GOLD_TABLES))


def table(name: str) -> GoldTable:
    """The entry for a gold table, by bare name (`engagement_daily`); KeyError naming the known ones."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown gold table {name!r}; known: {', '.join(NAMES)}") from None
