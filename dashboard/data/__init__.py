"""The dashboard's data layer: the lake, period maths, the distinct-count engine and the metrics.

Pages call it as `from dashboard import data` then `data.<function>(filters)`, or import the metric
family they need (`from dashboard.data.families import revenue`). The modules:

- `lake`: the only module that opens Delta tables or touches the lake path; the caches; the list of
  gold tables; `gold_range` ("this gold table in this date range") and `resolve` (a filter's dates).
- `periods`: day numbers and day / Monday-week / calendar-month periods.
- `activity`: gold.user_activity_daily and gold.users as arrays, and the distinct-user counting on
  them. User metrics under a country/device/gender/age-group filter are distinct users computed
  there (never sums of daily distincts); without such filters the gold aggregates are used directly.
- `daily`: per-day metrics and distinct users over a range (gold aggregates, or computed).
- `kpi`: the `Kpi` card and the comparison with the previous period.
- `families/<family>`: one module per metric family, named as the pipeline's (engagement,
  lifecycle, retention, funnel, revenue, loyalty, sessions, content, demographics, users, segments).
- `health`: tables, runs, quarantine and erasures; `catalog`: what SQL Lab offers.
"""

from __future__ import annotations

import logging

from .lake import (
    GOLD_TABLES, LAYERS, MAX_RESULTS, UAD, USERS, cached, clear_caches, clear_result_cache, delta_version, derived,
    frame, gold, has, lake_bounds, list_tables, read_arrow, resolve, table_path, table_version, versions,
)
from .periods import BIG, EPOCH, d2i, i2d, period_code, period_end, period_start
from .activity import (
    NUMERIC, PRIVATE_COLUMN_MARKERS, USER_DIMS, Activity, UserIndex, activity, distinct_pairs, filter_options,
    rolling_distinct, user_index, users_frame, users_mask,
)
from .daily import DAILY_COLUMNS, daily_metrics, range_counts
from .kpi import Kpi
from .families.content import courses, hourly, quizzes, top_events, top_pages
from .families.demographics import demographics
from .families.engagement import engagement, kpis
from .families.funnel import (
    funnel_by_device, funnel_distinct_users, funnel_entry_rows, funnel_over_time, funnel_rows, funnel_steps,
)
from .families.lifecycle import lifecycle
from .families.loyalty import balances, loyalty, loyalty_kpis
from .families.retention import cohort_window, d7_retention, retention, retention_curve, retention_kpi, retention_kpis
from .families.revenue import (
    buyers_in_range, conversion_by_device, money_label, pareto, reporting_currency, revenue, revenue_by_currency,
    revenue_kpis, top_shares, unconverted_orders,
)
from .families.segments import cluster_points, clusters, segment_profiles, segment_trend, segments
from .families.sessions import sessions
from .families.users import USER_TABLE_COLUMNS, active_user_ids, user_activity, user_profile, users_export, users_page
from .health import erasures, last_run, pipeline_runs, quarantine, reporting_timezone, run_durations, table_health
from .catalog import SQL_NOT_OFFERED, SQL_SILVER_COLUMNS, SQL_WITHHELD_COLUMNS, sql_table_rows, sql_tables

__all__ = [
    "BIG", "DAILY_COLUMNS", "EPOCH", "GOLD_TABLES", "LAYERS", "MAX_RESULTS", "NUMERIC", "PRIVATE_COLUMN_MARKERS",
    "SQL_NOT_OFFERED", "SQL_SILVER_COLUMNS", "SQL_WITHHELD_COLUMNS", "UAD", "USERS", "USER_DIMS",
    "USER_TABLE_COLUMNS", "Activity", "Kpi", "UserIndex", "active_user_ids", "activity", "balances",
    "buyers_in_range", "cached", "clear_caches", "clear_result_cache", "cluster_points", "clusters", "cohort_window",
    "conversion_by_device", "courses", "d2i", "d7_retention", "daily_metrics", "delta_version", "demographics",
    "derived", "distinct_pairs", "engagement", "erasures", "filter_options", "frame", "funnel_by_device",
    "funnel_distinct_users", "funnel_entry_rows", "funnel_over_time", "funnel_rows", "funnel_steps", "gold", "has",
    "hourly", "i2d", "kpis", "lake_bounds", "last_run", "lifecycle", "list_tables", "loyalty", "loyalty_kpis",
    "money_label", "pareto", "period_code", "period_end", "period_start", "pipeline_runs", "quarantine", "quizzes",
    "range_counts", "read_arrow", "reporting_currency", "reporting_timezone", "resolve", "retention",
    "retention_curve", "retention_kpi", "retention_kpis", "revenue", "revenue_by_currency", "revenue_kpis",
    "rolling_distinct", "run_durations", "segment_profiles", "segment_trend", "segments", "sessions",
    "sql_table_rows", "sql_tables", "table_health", "table_path", "table_version", "top_events", "top_pages",
    "top_shares", "unconverted_orders", "user_activity", "user_index", "user_profile", "users_export", "users_frame",
    "users_mask", "users_page", "versions", "warm_up",
]

log = logging.getLogger(__name__)


def warm_up() -> None:
    """Load the big tables and indexes once (at startup, in the background)."""
    try:
        lake_bounds()
        activity()
        users_frame()
        filter_options()
        for name in GOLD_TABLES:
            if name != "user_activity_daily":  # used through the activity index, never as pandas
                gold(name)
        table_health()  # the health page's per-table log details
    except Exception as exc:  # noqa: BLE001 - warming is best effort
        log.warning("warm-up failed: %s", exc)
