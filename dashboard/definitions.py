"""Metric definitions shown as tooltips, taken from docs/spec/metrics.md.

One place for the wording so every page explains a metric the same way; the
dashboard's own choices (KPI periods, filtered variants) are marked as such.
"""

from __future__ import annotations

DEFINITIONS: dict[str, str] = {
    # shared notions
    "active": "A user is active on day d when they have at least one active event (any valid event "
              "except app_uninstall) whose activity_date is d in the reporting timezone.",
    "timezone": "Reporting timezone: an event's activity_date is the calendar date of its timestamp in this "
                "zone; hours and weekdays likewise.",
    "first_seen_date": "The earlier of the user's first active date and the date of their registered_at.",
    "partial": "A partial period is not fully covered by the selected date range or by the lake's data "
               "(e.g. the current, unfinished month); its value is not comparable with full periods.",
    # engagement
    "dau": "DAU: users active on the day.",
    "wau": "WAU: distinct users active in the rolling 7-day window [d-6, d].",
    "mau": "MAU: distinct users active in the rolling 30-day window [d-29, d].",
    "active_period": "Active users of a week or calendar month: distinct users active on any day of it "
                     "(inside the selected range).",
    "avg_dau": "Average DAU: mean daily active users over the period's days.",
    "stickiness": "Stickiness = DAU / MAU, MAU being the rolling 30-day window (null when MAU = 0). On the "
                  "week view each week shows the average of its days' DAU / MAU. On the month view the chart "
                  "shows monthly stickiness instead: average DAU / users active in the calendar month (a "
                  "different, lower number).",
    "stickiness_avg": "Stickiness (avg DAU / MAU): the average over the range's days of DAU / MAU, MAU being the "
                      "rolling 30-day window.",
    "stickiness_month": "Monthly stickiness = average DAU over the month's days / users active in the calendar "
                        "month (not the rolling MAU, so it is lower than daily DAU / MAU).",
    "new_users": "New users: users whose first_seen_date is the day (active that day or not).",
    "new_active_users": "New active users: active on the day and first seen that day.",
    "existing_active_users": "Existing active users = DAU - new active users (first seen earlier).",
    "new_to_active": "New-to-active ratio: new active users / active users of the period.",
    "installs": "Installs: distinct users with an app_install event that day.",
    "uninstalls": "Uninstalls: distinct users with an app_uninstall event that day.",
    "active_users": "Active users: distinct users active at least once in the selected date range; "
                    "new = first seen inside the range, existing = first seen before it.",
    # lifecycle
    "lifecycle": "Lifecycle on d: new = active and first seen on d; returning = active on d and d-1, not new; "
                 "resurrecting = active on d, not on d-1, not new; dormant = active on d-1 and not on d "
                 "(drawn below zero). new + returning + resurrecting = DAU.",
    "lifecycle_new": "New: active on the day and first seen that day.",
    "returning": "Returning: active on the day and the day before, not new.",
    "resurrecting": "Resurrecting: active on the day, not the day before, not new.",
    "dormant": "Dormant: active the day before and not on the day (a positive count, drawn below zero).",
    # retention
    "retention": "Retention: a user's cohort is their first_seen_date; retained users at day N are cohort "
                 "members active exactly on cohort_date + N; retention rate = retained / cohort size.",
    "retained_users": "Retained on day N: cohort members active exactly on cohort_date + N.",
    "retained_users_unbounded": "Retained on or after day N: cohort members active on cohort_date + N "
                                "or any later day.",
    "retention_weekly": "Weekly retention: weeks start on Monday; a member is retained in week N when active "
                        "on any day of it.",
    "retention_curve": "Average retention curve: for each day N, the sum of retained users over the sum of "
                       "cohort sizes of the cohorts old enough to have a day N.",
    "d1": "D1 retention: share of the selected cohorts active exactly 1 day after their first_seen_date.",
    "d7": "D7 retention: share of the selected cohorts active exactly 7 days after their first_seen_date "
          "(cohorts younger than 7 days are left out).",
    "d30": "D30 retention: share of the selected cohorts active exactly 30 days after their first_seen_date.",
    # funnel
    "funnel": "Funnel item_view -> add_to_cart -> checkout_start -> purchase with a 14-day conversion window: "
              "on each date a user enters at their first item_view; a step is reached when every earlier "
              "step was found in order inside the window. Counts are entries, summed over the dates in "
              "range (user-days); distinct users count each user once per step (a user with an entry in "
              "the range that reached it).",
    "step_conversion": "Step conversion: entries (user-days) reaching a step / entries reaching the previous step.",
    "overall_conversion": "Funnel conversion: funnel entries (user-days) that reached a step within the "
                          "conversion window / funnel entries. Counts entries, not distinct users or orders, "
                          "so it is not the buyer conversion of the Revenue page. Over time, entries whose "
                          "window is not yet closed (entry date + 14 days after the lake's last date) are "
                          "left out unless included: their later steps may still come.",
    "drop_off": "Drop-off: entries (user-days) that reached the previous step but not this one.",
    "funnel_device": "Device: the device of the event the user entered the funnel with.",
    # demographics
    "demographics": "Demographics as of the lake's last date: users = every known user (profiles and event "
                    "users); gender normalised to female/male/other/unknown; age groups <18 ... 65+; "
                    "country from the profile, else the first event that carries one.",
    "users": "Users: every known user (with a profile or with events).",
    "active_users_30d": "Active users (30 days): active in [D-29, D] where D is the lake's last date.",
    "new_users_30d": "New users (30 days): first seen in [D-29, D].",
    "active_in_range": "Active users: distinct users active in the selected date range.",
    "new_in_range": "New users: users first seen in the selected date range.",
    # loyalty
    "points_earned": "Points earned: sum of points of points_earned events.",
    "points_redeemed": "Points redeemed: sum of points of points_redeemed events.",
    "earners": "Earners: distinct users with a points_earned event that day.",
    "redeemers": "Redeemers: distinct users with a points_redeemed event that day.",
    "participation_rate": "Loyalty participation per period: participants / active users of the period "
                          "(day: participants / DAU; week or month: distinct participants / distinct active "
                          "users of it), participants being users who earned or redeemed points (null when "
                          "there is no active user).",
    "range_participation_rate": "Loyalty participation over the range = distinct users who earned or redeemed "
                                "points in the range / distinct active users in the range. Higher than the "
                                "daily rate because a user needs to take part on only one of the range's days.",
    "outstanding_points": "Outstanding points: everything earned minus everything redeemed up to the end of "
                          "the day, all users together.",
    "balance": "Balance of a user: points earned minus points redeemed, all time.",
    # revenue
    "orders": "Orders: purchases with payment_status = success.",
    "revenue": "Revenue: sum of amount of successful purchases.",
    "buyers": "Buyers: distinct users with a successful purchase (a zero-amount order counts).",
    "paying_users": "Paying users: users whose successful purchases in the range add up to more than zero. "
                    "Buyers whose only orders had a zero amount (e.g. full coupons) are buyers but not paying "
                    "users.",
    "failed_payments": "Failed payments: purchases with a payment_status other than success.",
    "conversion_rate": "Buyer conversion per period: buyers / active users of the period (day: buyers / DAU; "
                       "week or month: distinct buyers / distinct active users of the week or month). Null on a "
                       "zero denominator. Short periods give lower rates than the whole range.",
    "range_conversion_rate": "Buyer conversion over the range = distinct buyers in the range / distinct active "
                             "users in the range. Higher than the daily rate (buyers / DAU) because a user needs "
                             "to buy on only one of the range's days.",
    "arpu": "ARPU = revenue / DAU; over a week, a month or the range: revenue / distinct active users.",
    "arppu": "ARPPU = revenue / buyers; over a week, a month or the range: revenue / distinct buyers.",
    "pareto": "Pareto: users ranked by revenue in the range; the curve shows the share of revenue coming "
              "from the top x % of paying users.",
    # sessions and content
    "sessions": "Sessions: a user's active events that share a session_id; without one, a new session starts "
                "after more than 30 minutes without events. A session belongs to the date of its first event.",
    "avg_session_seconds": "Average session length: last minus first event time of a session, in seconds, "
                           "averaged over the day's sessions.",
    "avg_time_per_user_seconds": "Average daily time per active user: total session seconds / users with a "
                                 "session that day.",
    "event_counts": "Events: number of events of each name in the range; users summed over days (user-days).",
    "page_views": "Page views: page_view events per page in the range; users summed over days (user-days).",
    "hourly": "Events by weekday (1 = Monday) and hour of the day in the reporting timezone, all time.",
    "quiz": "Quizzes: attempts, distinct participants per day, passes and pass rate = passes / attempts.",
    "course_completion": "Course completion rate = completions / learners.",
    # segments and clusters
    "segment": "Segment: a documented rule set that puts every user in exactly one segment "
               "(e.g. new, high_value, regular, occasional, dormant).",
    "cluster": "Cluster: a k-means cluster over behavioural features, drawn on the first two principal axes.",
    "silhouette": "Silhouette: how well users fit their own cluster compared with the nearest other (-1 to 1).",
    # pipeline
    "table_version": "Delta table version: increases by one with every commit to the table.",
    "quarantine": "Quarantined lines: input lines that did not become a silver row, by reason.",
}

# the name a per-period chart gives its series, by granularity: a name never stands for two quantities
PERIOD_LABELS: dict[str, dict[str, str]] = {
    "stickiness": {"day": "Stickiness (DAU / MAU)", "week": "Stickiness (DAU / MAU, week's average)",
                   "month": "Monthly stickiness (avg DAU / month's active users)"},
    "conversion_rate": {"day": "Daily buyer conversion (buyers / DAU)",
                        "week": "Weekly buyer conversion (buyers / active users of the week)",
                        "month": "Monthly buyer conversion (buyers / active users of the month)"},
    "participation_rate": {"day": "Daily participation (participants / DAU)",
                           "week": "Weekly participation (participants / active users of the week)",
                           "month": "Monthly participation (participants / active users of the month)"},
}


def period_label(key: str, grain: str) -> str:
    """The name of a per-period series at a granularity ('Daily buyer conversion (buyers / DAU)')."""
    return PERIOD_LABELS[key].get(grain, PERIOD_LABELS[key]["day"])


LABELS: dict[str, str] = {
    "dau": "DAU", "wau": "WAU", "mau": "MAU", "stickiness": "Stickiness", "new_users": "New users",
    "new_active_users": "New active users", "existing_active_users": "Existing active users",
    "active_users": "Active users", "outstanding_points": "Outstanding points", "revenue": "Revenue",
    "conversion_rate": "Buyer conversion", "range_conversion_rate": "Buyer conversion (range)",
    "range_participation_rate": "Participation (range)", "stickiness_avg": "Stickiness (avg DAU / MAU)",
    "overall_conversion": "Funnel conversion (entries)", "paying_users": "Paying users",
    "d7": "D7 retention", "d1": "D1 retention", "d30": "D30 retention",
    "orders": "Orders", "buyers": "Buyers", "arpu": "ARPU", "arppu": "ARPPU",
}


def definition(key: str) -> str:
    """The tooltip text of a metric (empty when unknown)."""
    return DEFINITIONS.get(key, "")
