"""A small, internally consistent gold lake for dashboard tests and benchmarks.

Every gold table is computed in numpy/pandas from one synthetic per-user-per-day
activity set, following docs/contracts.md (names and types) and
docs/spec/metrics.md (definitions), so the dashboard's own computations can
be checked against the gold aggregates. Run as a script to build a bigger lake:

    .venv/bin/python tests/dashboard/fake_lake.py --out /tmp/lake10k --users 10000 --days 365
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from deltalake import write_deltalake

EPOCH = date(1970, 1, 1)
GENDERS = ["female", "male", "other", "unknown"]
GENDER_P = [0.45, 0.43, 0.04, 0.08]
COUNTRIES = ["DE", "US", "FR", "GB", "ES", "IT", "NL", "PL", "BR", "IN"]
COUNTRY_P = [0.24, 0.2, 0.12, 0.1, 0.08, 0.07, 0.06, 0.05, 0.05, 0.03]
DEVICES = ["mobile", "web", "tablet", "desktop"]
DEVICE_P = [0.55, 0.3, 0.1, 0.05]
CHANNELS = ["organic", "ads", "referral", "social"]
AGE_GROUPS = ["<18", "18-24", "25-34", "35-44", "45-54", "55-64", "65+", "unknown"]
FUNNEL_STEPS = ["item_view", "add_to_cart", "checkout_start", "purchase"]
FUNNEL_WINDOW_DAYS = 14
PAGES = ["/home", "/catalog", "/item", "/cart", "/checkout", "/profile", "/courses", "/quiz"]

# Arrow types of every table, in contract column order.
D, L, F, S, I, B = pa.date32(), pa.int64(), pa.float64(), pa.string(), pa.int32(), pa.bool_()
TS = pa.timestamp("us", tz="UTC")
SCHEMAS: dict[str, list[tuple[str, pa.DataType]]] = {
    "engagement_daily": [("activity_date", D), ("dau", L), ("wau", L), ("mau", L), ("stickiness", F),
                         ("new_users", L), ("new_active_users", L), ("existing_active_users", L),
                         ("installs", L), ("uninstalls", L)],
    "engagement_monthly": [("month", D), ("mau", L), ("new_users", L), ("new_active_users", L),
                           ("existing_active_users", L), ("avg_dau", F), ("stickiness", F), ("is_complete", B)],
    "lifecycle_daily": [("activity_date", D), ("new", L), ("returning", L), ("resurrecting", L), ("dormant", L)],
    "demographics": [("gender", S), ("age_group", S), ("country", S), ("users", L),
                     ("active_users_30d", L), ("new_users_30d", L)],
    "loyalty_daily": [("activity_date", D), ("points_earned", L), ("points_redeemed", L), ("earners", L),
                      ("redeemers", L), ("participants", L), ("participation_rate", F), ("outstanding_points", L)],
    "loyalty_balances": [("user_id", S), ("points_earned", L), ("points_redeemed", L), ("balance", L),
                         ("first_loyalty_date", D), ("last_loyalty_date", D)],
    "user_activity_daily": [("activity_date", D), ("user_id", S), ("is_new", B), ("events", L), ("sessions", L),
                            ("purchases", L), ("revenue", F), ("points_earned", L), ("points_redeemed", L),
                            ("device", S), ("country", S), ("gender", S), ("age_group", S)],
    "users": [("user_id", S), ("first_seen_date", D), ("last_active_date", D), ("gender", S), ("age", I),
              ("age_group", S), ("country", S), ("signup_channel", S), ("active_days", L), ("events", L),
              ("orders", L), ("revenue", F), ("points_balance", L), ("segment", S), ("cluster", I),
              ("cluster_pc1", F), ("cluster_pc2", F)],
    "retention_daily": [("cohort_date", D), ("day_n", I), ("cohort_size", L), ("retained_users", L),
                        ("retained_users_unbounded", L), ("retention_rate", F)],
    "retention_weekly": [("cohort_week", D), ("week_n", I), ("cohort_size", L), ("retained_users", L),
                         ("retention_rate", F)],
    "funnel_daily": [("activity_date", D), ("device", S), ("step_index", I), ("step_name", S), ("users", L),
                     ("is_window_complete", B)],
    "funnel_entries": [("activity_date", D), ("user_id", S), ("device", S), ("reached", I),
                       ("is_window_complete", B)],
    "revenue_daily": [("activity_date", D), ("orders", L), ("revenue", F), ("buyers", L), ("failed_payments", L),
                      ("conversion_rate", F), ("arpu", F), ("arppu", F)],
    "user_revenue": [("user_id", S), ("orders", L), ("revenue", F), ("first_purchase_date", D),
                     ("last_purchase_date", D)],
    "sessions_daily": [("activity_date", D), ("sessions", L), ("users", L), ("total_session_seconds", F),
                       ("avg_session_seconds", F), ("avg_time_per_user_seconds", F)],
    "event_counts_daily": [("activity_date", D), ("event", S), ("events", L), ("users", L)],
    "page_views_daily": [("activity_date", D), ("page", S), ("views", L), ("users", L)],
    "hourly_activity": [("event", S), ("day_of_week", I), ("hour", I), ("events", L)],
    "quiz_daily": [("activity_date", D), ("quiz_id", S), ("attempts", L), ("participants", L), ("passes", L),
                   ("pass_rate", F), ("avg_score_pct", F), ("avg_duration_s", F)],
    "course_progress": [("course_id", S), ("learners", L), ("completions", L), ("completion_rate", F)],
    "segment_summary": [("segment", S), ("users", L), ("share", F), ("avg_revenue", F), ("avg_active_days", F)],
    "cluster_profiles": [("cluster", I), ("label", S), ("users", L), ("share", F), ("silhouette", F),
                         ("centroid_active_days", F), ("centroid_events_per_day", F),
                         ("centroid_revenue", F), ("centroid_points_balance", F)],
    "quarantine_summary": [("feed", S), ("reason", S), ("lines", L)],
    "revenue_by_currency_daily": [("activity_date", D), ("currency", S), ("orders", L), ("amount", F), ("revenue", F),
                                  ("converted", B)],
}
# Tables that carry money name their currency (docs/contracts.md); the fake lake reports in USD.
MONEY_TABLES = ("revenue_daily", "user_revenue", "revenue_by_currency_daily", "user_activity_daily", "users",
                "segment_summary", "cluster_profiles")
REPORTING_CURRENCY = "USD"
EUR_PER_USD = 0.9  # the fake lake's one exchange rate
for _name in MONEY_TABLES:
    SCHEMAS[_name] = SCHEMAS[_name] + [("reporting_currency", S)]
RUNS_SCHEMA = [("run_id", S), ("started_at", TS), ("ended_at", TS), ("status", S), ("timezone", S),
               ("files", L), ("lines", L), ("silver_rows", L), ("duplicates", L), ("quarantined", L),
               ("rows_json", S), ("quarantine_json", S), ("durations_json", S), ("message", S)]

ERASURES_SCHEMA = [("erasure_id", S), ("requested_at", TS), ("completed_at", TS), ("user_id_hash", S),
                   ("rows_removed_json", S), ("status", S), ("files_tables_json", S), ("files_due_at", TS),
                   ("files_deleted_at", TS)]


@dataclass
class FakeLake:
    """What a test needs to know about the lake it got."""

    root: Path
    start: date
    end: date
    n_users: int
    timezone: str
    frames: dict[str, pd.DataFrame]


def _age_group(age: np.ndarray) -> np.ndarray:
    """Map ages (NaN = unknown) to the contract's age groups."""
    out = np.full(age.shape, "unknown", dtype=object)
    bins = [(0, 17, "<18"), (18, 24, "18-24"), (25, 34, "25-34"), (35, 44, "35-44"),
            (45, 54, "45-54"), (55, 64, "55-64"), (65, 200, "65+")]
    for lo, hi, name in bins:
        out[(age >= lo) & (age <= hi)] = name
    return out


def _safe_div(num, den):
    num = np.asarray(num, dtype=float)
    den = np.asarray(den, dtype=float)
    out = np.full(num.shape, np.nan)
    ok = den > 0
    out[ok] = num[ok] / den[ok]
    return out


def _to_arrow(name: str, df: pd.DataFrame, schema_cols=None) -> pa.Table:
    cols = schema_cols or SCHEMAS[name]
    arrays = []
    for col, typ in cols:
        s = df[col]
        if pa.types.is_date32(typ):
            vals = [None if pd.isna(v) else (v if isinstance(v, date) else pd.Timestamp(v).date()) for v in s]
            arrays.append(pa.array(vals, type=typ))
        elif pa.types.is_timestamp(typ):
            arrays.append(pa.array(pd.to_datetime(s, utc=True), type=typ))
        elif pa.types.is_string(typ):
            arrays.append(pa.array([None if (v is None or (isinstance(v, float) and np.isnan(v))) else str(v)
                                    for v in s], type=typ))
        elif pa.types.is_floating(typ):
            arrays.append(pa.array(s.astype("float64").to_numpy(), type=typ, from_pandas=True))
        elif pa.types.is_boolean(typ):
            arrays.append(pa.array(s.astype(bool).to_numpy(), type=typ))
        else:
            vals = s.to_numpy(dtype="float64", na_value=np.nan) if s.isna().any() else s.to_numpy()
            if s.isna().any():
                arrays.append(pa.array([None if np.isnan(v) else int(v) for v in vals], type=typ))
            else:
                arrays.append(pa.array(vals.astype("int64"), type=typ))
    return pa.Table.from_arrays(arrays, names=[c for c, _ in cols])


def write_table(root: Path, layer: str, name: str, table: pa.Table, mode: str = "overwrite",
                schema_mode: str | None = None) -> Path:
    """Write one Delta table (no deletion vectors, no column mapping)."""
    path = root / layer / name
    path.parent.mkdir(parents=True, exist_ok=True)
    write_deltalake(str(path), table, mode=mode, schema_mode=schema_mode)
    return path


def _kmeans(x: np.ndarray, k: int, rng: np.random.Generator, iters: int = 15) -> tuple[np.ndarray, np.ndarray]:
    centers = x[rng.choice(len(x), size=k, replace=False)]
    for _ in range(iters):
        dist = ((x[:, None, :] - centers[None, :, :]) ** 2).sum(-1)
        lab = dist.argmin(1)
        for j in range(k):
            if (lab == j).any():
                centers[j] = x[lab == j].mean(0)
    return lab, centers


def generate(n_users: int = 80, n_days: int = 70, start: date = date(2024, 1, 1), seed: int = 42,
             tz: str = "Europe/Berlin") -> tuple[dict[str, pd.DataFrame], date, date]:
    """Compute every gold table as pandas frames from synthetic activity."""
    rng = np.random.default_rng(seed)
    days = np.arange(n_days)
    dates = np.array([start + timedelta(days=int(d)) for d in days])
    start_ord = (start - EPOCH).days
    last = n_days - 1
    end = dates[-1]

    # --- users -------------------------------------------------------------
    uid = np.array([f"u{i:05d}" for i in range(n_users)], dtype=object)
    has_profile = rng.random(n_users) < 0.9
    reg_day = np.where(rng.random(n_users) < 0.3, rng.integers(0, max(1, n_days // 10), n_users),
                       rng.integers(0, n_days, n_users))
    gender = rng.choice(GENDERS, size=n_users, p=GENDER_P).astype(object)
    gender[~has_profile] = "unknown"
    age = rng.integers(14, 76, n_users).astype(float)
    age[(~has_profile) | (rng.random(n_users) < 0.05)] = np.nan
    age_group = _age_group(age)
    country = rng.choice(COUNTRIES, size=n_users, p=COUNTRY_P).astype(object)
    country[rng.random(n_users) < 0.02] = "unknown"
    channel = rng.choice(CHANNELS, size=n_users).astype(object)
    channel[~has_profile] = None
    main_device = rng.choice(DEVICES, size=n_users, p=DEVICE_P)

    # --- activity matrix -----------------------------------------------------
    start_active = np.minimum(reg_day + rng.geometric(0.7, n_users) - 1, last)
    never_active = rng.random(n_users) < 0.05
    p_user = rng.beta(2, 3, n_users) * 0.85 + 0.05
    churn = start_active + np.ceil(rng.exponential(n_days * 1.5, n_users)).astype(int)
    weekday = np.array([d.weekday() for d in dates])
    day_factor = np.where(weekday >= 5, 0.8, 1.0)
    act = rng.random((n_users, n_days)) < (p_user[:, None] * day_factor[None, :])
    act &= days[None, :] >= start_active[:, None]
    act &= days[None, :] < churn[:, None]
    act[np.arange(n_users), start_active] |= rng.random(n_users) < 0.85
    act[never_active] = False
    any_act = act.any(1)
    first_act = np.where(any_act, act.argmax(1), n_days + 999)
    last_act = np.where(any_act, n_days - 1 - act[:, ::-1].argmax(1), -1)
    # users without profile are only known through events
    first_seen = np.where(has_profile, np.minimum(reg_day, first_act), first_act)
    known = has_profile | any_act
    # drop the few profile-less users that never appear anywhere
    keep = np.flatnonzero(known)
    (uid, has_profile, gender, age, age_group, country, channel, main_device, act, first_act, last_act,
     first_seen, any_act, churn) = (a[keep] for a in (uid, has_profile, gender, age, age_group, country, channel,
                                                      main_device, act, first_act, last_act, first_seen,
                                                      any_act, churn))
    n_users = len(uid)

    ru, rd = np.nonzero(act)  # rows sorted by user then day
    n_rows = len(ru)
    sessions = 1 + rng.binomial(2, 0.3, n_rows)
    events = sessions + 1 + rng.poisson(5, n_rows)
    other_dev = rng.choice(DEVICES, size=n_rows, p=DEVICE_P)
    device = np.where(rng.random(n_rows) < 0.8, main_device[ru], other_dev)
    p_buy = np.where(rng.random(n_users) < 0.15, 0.25, 0.02)
    purchases = rng.binomial(2, p_buy[ru] / 2)
    price = np.round(rng.lognormal(3.2, 0.6, n_rows), 2)
    revenue = np.round(purchases * price, 2)
    failed = rng.binomial(1, 0.02, n_rows)
    loyal = rng.random(n_users) < 0.4
    points_earned = np.where(loyal[ru] & (rng.random(n_rows) < 0.5), 10 * rng.integers(1, 6, n_rows), 0)
    # redeem in chunks of 100 whenever 60 % of what was earned so far crosses a multiple of 100
    cum_earned = pd.Series(points_earned).groupby(ru).cumsum().to_numpy()
    target = 100 * np.floor(0.6 * cum_earned / 100)
    prev_target = np.r_[0, target[:-1]]
    prev_target[np.r_[True, ru[1:] != ru[:-1]]] = 0
    points_redeemed = (target - prev_target).astype(np.int64)
    session_seconds = sessions * rng.integers(60, 1200, n_rows)
    is_new = rd == first_seen[ru]

    uad = pd.DataFrame({
        "activity_date": dates[rd], "user_id": uid[ru], "is_new": is_new, "events": events.astype(np.int64),
        "sessions": sessions.astype(np.int64), "purchases": purchases.astype(np.int64), "revenue": revenue,
        "points_earned": points_earned.astype(np.int64), "points_redeemed": points_redeemed,
        "device": device, "country": country[ru], "gender": gender[ru], "age_group": age_group[ru],
    })

    def per_day(values, mask=None):
        w = values if mask is None else np.where(mask, values, 0)
        return np.bincount(rd, weights=w, minlength=n_days)

    ones = np.ones(n_rows)
    dau = per_day(ones).astype(np.int64)

    # --- engagement_daily ----------------------------------------------------
    cs = np.concatenate([np.zeros((n_users, 1), dtype=np.int32), act.cumsum(1, dtype=np.int32)], axis=1)

    def rolling(window):
        lo = np.maximum(days + 1 - window, 0)
        return ((cs[:, days + 1] - cs[:, lo]) > 0).sum(0).astype(np.int64)

    wau, mau = rolling(7), rolling(30)
    new_users = np.bincount(first_seen[first_seen < n_days], minlength=n_days).astype(np.int64)
    new_active = per_day(ones, is_new).astype(np.int64)
    installs = np.bincount(first_act[any_act & (rng.random(n_users) < 0.9)], minlength=n_days).astype(np.int64)
    uninstall_day = np.where(any_act & (rng.random(n_users) < 0.5), last_act + 1, n_days + 5)
    uninstall_day = uninstall_day[uninstall_day < n_days]
    uninstalls = np.bincount(uninstall_day, minlength=n_days).astype(np.int64)
    engagement_daily = pd.DataFrame({
        "activity_date": dates, "dau": dau, "wau": wau, "mau": mau, "stickiness": _safe_div(dau, mau),
        "new_users": new_users, "new_active_users": new_active, "existing_active_users": dau - new_active,
        "installs": installs, "uninstalls": uninstalls})

    # --- engagement_monthly --------------------------------------------------
    months = np.array([d.year * 12 + d.month - 1 for d in dates])
    month_rows = []
    for m in np.unique(months):
        in_m = months == m
        first_day = date(m // 12, m % 12 + 1, 1)
        nxt = date((m + 1) // 12, (m + 1) % 12 + 1, 1)
        m_active = act[:, in_m].any(1)
        fs_in = np.isin(first_seen, days[in_m])
        mau_m = int(m_active.sum())
        new_m = int(fs_in.sum())
        new_act_m = int((fs_in & m_active).sum())
        avg_dau = float(dau[in_m].mean())
        month_rows.append({
            "month": first_day, "mau": mau_m, "new_users": new_m, "new_active_users": new_act_m,
            "existing_active_users": mau_m - new_act_m, "avg_dau": avg_dau,
            "stickiness": avg_dau / mau_m if mau_m else np.nan,
            "is_complete": bool(start <= first_day and end >= nxt - timedelta(days=1))})
    engagement_monthly = pd.DataFrame(month_rows)

    # --- lifecycle_daily -----------------------------------------------------
    new_mat = first_seen[:, None] == days[None, :]
    prev = np.concatenate([np.zeros((n_users, 1), bool), act[:, :-1]], axis=1)
    lc = {
        "new": (act & new_mat).sum(0), "returning": (act & prev & ~new_mat).sum(0),
        "resurrecting": (act & ~prev & ~new_mat).sum(0), "dormant": (prev & ~act).sum(0)}
    lifecycle = pd.DataFrame({"activity_date": dates, **{k: v.astype(float) for k, v in lc.items()}})
    lifecycle.loc[0, ["new", "returning", "resurrecting", "dormant"]] = np.nan

    # --- retention -----------------------------------------------------------
    ret_rows = []
    cohort_sizes = np.bincount(first_seen[first_seen < n_days], minlength=n_days)
    dn = rd - first_seen[ru]
    ok = dn <= 30
    retained = np.zeros((n_days, 31), dtype=np.int64)
    np.add.at(retained, (first_seen[ru][ok], dn[ok]), 1)
    unb = np.zeros((n_days, 32), dtype=np.int64)
    fs_u = first_seen[any_act]
    span = np.minimum(last_act[any_act] - fs_u, 30)
    np.add.at(unb, (fs_u, np.zeros_like(fs_u)), 1)
    np.add.at(unb, (fs_u, span + 1), -1)
    unb = unb.cumsum(1)[:, :31]
    for c in range(n_days):
        for n in range(0, min(30, last - c) + 1):
            size = int(cohort_sizes[c])
            ret_rows.append({"cohort_date": dates[c], "day_n": n, "cohort_size": size,
                             "retained_users": int(retained[c, n]), "retained_users_unbounded": int(unb[c, n]),
                             "retention_rate": retained[c, n] / size if size else np.nan})
    retention_daily = pd.DataFrame(ret_rows)

    monday = days - weekday  # day index of the Monday of each date (can be negative)
    cw_user = first_seen - weekday[first_seen]  # Monday (day index) of each user's cohort week
    row_week = monday[rd]
    wk_n = (row_week - cw_user[ru]) // 7
    pair = pd.DataFrame({"u": ru, "c": cw_user[ru], "w": wk_n}).drop_duplicates()
    pair = pair[pair.w <= 12]
    wk_counts = pair.groupby(["c", "w"]).size()
    size_w = pd.Series(cw_user[first_seen < n_days]).value_counts()
    wrows = []
    for c, size in sorted(size_w.items()):
        for n in range(0, 13):
            if c + 7 * n > last:
                break
            r = int(wk_counts.get((c, n), 0))
            wrows.append({"cohort_week": start + timedelta(days=int(c)), "week_n": n, "cohort_size": int(size),
                          "retained_users": r, "retention_rate": r / size})
    retention_weekly = pd.DataFrame(wrows)

    # --- funnel_daily --------------------------------------------------------
    buy = purchases > 0
    s1 = buy | (rng.random(n_rows) < 0.55)
    s2 = buy | (s1 & (rng.random(n_rows) < 0.45))
    s3 = buy | (s2 & (rng.random(n_rows) < 0.6))
    s4 = buy | (s3 & (rng.random(n_rows) < 0.3))
    f_rows = []
    closed = lambda d: d + FUNNEL_WINDOW_DAYS <= n_days - 1  # noqa: E731 - the entry's window ends in the lake
    for k, (name, reached) in enumerate(zip(FUNNEL_STEPS, (s1, s2, s3, s4)), start=1):
        g = pd.DataFrame({"d": rd[reached], "device": device[reached]}).groupby(["d", "device"]).size()
        for (d, dev), cnt in g.items():
            f_rows.append({"activity_date": dates[d], "device": dev, "step_index": k, "step_name": name,
                           "users": int(cnt), "is_window_complete": bool(closed(d))})
    funnel = pd.DataFrame(f_rows).sort_values(["activity_date", "device", "step_index"]).reset_index(drop=True)
    # one row per entry (a user-day at step 1), with the number of steps it reached
    funnel_entries = pd.DataFrame({
        "activity_date": dates[rd[s1]], "user_id": uid[ru[s1]], "device": device[s1],
        "reached": (s1.astype(int) + s2 + s3 + s4)[s1].astype(np.int32), "is_window_complete": closed(rd[s1]),
    }).sort_values(["activity_date", "user_id"]).reset_index(drop=True)

    # --- demographics --------------------------------------------------------
    active_30 = act[:, max(0, n_days - 30):].any(1)
    new_30 = (first_seen >= n_days - 30) & (first_seen < n_days)
    demo = pd.DataFrame({"gender": gender, "age_group": age_group, "country": country,
                         "users": 1, "active_users_30d": active_30.astype(int), "new_users_30d": new_30.astype(int)})
    demographics = demo.groupby(["gender", "age_group", "country"], as_index=False).sum()

    # --- loyalty -------------------------------------------------------------
    earned_d = per_day(points_earned).astype(np.int64)
    redeemed_d = per_day(points_redeemed).astype(np.int64)
    earners = per_day(ones, points_earned > 0).astype(np.int64)
    redeemers = per_day(ones, points_redeemed > 0).astype(np.int64)
    participants = per_day(ones, (points_earned > 0) | (points_redeemed > 0)).astype(np.int64)
    loyalty_daily = pd.DataFrame({
        "activity_date": dates, "points_earned": earned_d, "points_redeemed": redeemed_d, "earners": earners,
        "redeemers": redeemers, "participants": participants,
        "participation_rate": _safe_div(participants, dau),
        "outstanding_points": np.cumsum(earned_d - redeemed_d)})
    pts = uad.assign(u=ru, d=rd)[(points_earned > 0) | (points_redeemed > 0)]
    lb = pts.groupby("u").agg(points_earned=("points_earned", "sum"), points_redeemed=("points_redeemed", "sum"),
                              first=("d", "min"), last=("d", "max"))
    loyalty_balances = pd.DataFrame({
        "user_id": uid[lb.index], "points_earned": lb.points_earned.to_numpy(),
        "points_redeemed": lb.points_redeemed.to_numpy(),
        "balance": (lb.points_earned - lb.points_redeemed).to_numpy(),
        "first_loyalty_date": dates[lb["first"].to_numpy()], "last_loyalty_date": dates[lb["last"].to_numpy()]})

    # --- revenue -------------------------------------------------------------
    orders_d = per_day(purchases).astype(np.int64)
    revenue_d = np.round(per_day(revenue), 2)
    buyers_d = per_day(ones, buy).astype(np.int64)
    revenue_daily = pd.DataFrame({
        "activity_date": dates, "orders": orders_d, "revenue": revenue_d, "buyers": buyers_d,
        "failed_payments": per_day(failed).astype(np.int64), "conversion_rate": _safe_div(buyers_d, dau),
        "arpu": _safe_div(revenue_d, dau), "arppu": _safe_div(revenue_d, buyers_d)})
    ur = uad.assign(u=ru, d=rd)[buy].groupby("u").agg(orders=("purchases", "sum"), revenue=("revenue", "sum"),
                                                       first=("d", "min"), last=("d", "max"))
    user_revenue = pd.DataFrame({
        "user_id": uid[ur.index], "orders": ur.orders.to_numpy(), "revenue": np.round(ur.revenue.to_numpy(), 2),
        "first_purchase_date": dates[ur["first"].to_numpy()], "last_purchase_date": dates[ur["last"].to_numpy()]})

    # Per currency sent: a third of each day's orders in EUR, the rest in USD, and every 10th day one of
    # its orders in XYZ (no rate: counted in orders, left out of revenue).
    bc_rows = []
    for i, day in enumerate(dates):
        n, rev = int(orders_d[i]), float(revenue_d[i])
        if not n:
            continue
        x = 1 if i % 10 == 0 and n >= 3 else 0
        e = (n - x) // 3
        eur_rev = round(rev * e / (n - x), 2)
        if n - x - e:
            bc_rows.append((day, "USD", n - x - e, round(rev - eur_rev, 2), round(rev - eur_rev, 2), True))
        if e:
            bc_rows.append((day, "EUR", e, round(eur_rev * EUR_PER_USD, 2), eur_rev, True))
        if x:
            bc_rows.append((day, "XYZ", x, 5.0, np.nan, False))
    revenue_by_currency = pd.DataFrame(bc_rows, columns=["activity_date", "currency", "orders", "amount", "revenue",
                                                         "converted"])

    # --- sessions ------------------------------------------------------------
    sess_d = per_day(sessions).astype(np.int64)
    secs_d = per_day(session_seconds).astype(float)  # exact sums of session lengths (not whole seconds)
    sessions_daily = pd.DataFrame({
        "activity_date": dates, "sessions": sess_d, "users": dau, "total_session_seconds": secs_d,
        "avg_session_seconds": _safe_div(secs_d, sess_d), "avg_time_per_user_seconds": _safe_div(secs_d, dau)})

    # --- event and page counts -------------------------------------------------
    ev_rows, pv_rows = [], []
    tot_events = per_day(events).astype(np.int64)
    for d in range(n_days):
        if dau[d] == 0:
            continue
        e = int(tot_events[d])
        parts = {"app_open": int(sess_d[d]), "item_view": int(0.15 * e), "add_to_cart": int(0.05 * e),
                 "checkout_start": int(0.02 * e), "purchase": int(orders_d[d])}
        parts["page_view"] = max(e - sum(parts.values()), 0)
        for ev, cnt in parts.items():
            ev_rows.append({"activity_date": dates[d], "event": ev, "events": cnt,
                            "users": int(min(dau[d], max(cnt // 2, min(cnt, 1))))})
        if uninstalls[d]:
            ev_rows.append({"activity_date": dates[d], "event": "app_uninstall", "events": int(uninstalls[d]),
                            "users": int(uninstalls[d])})
        views = rng.multinomial(parts["page_view"], np.array([8, 6, 5, 2, 1, 2, 3, 2]) / 29)
        for page, v in zip(PAGES, views):
            if v:
                pv_rows.append({"activity_date": dates[d], "page": page, "views": int(v),
                                "users": int(min(dau[d], max(1, v // 2)))})
    event_counts = pd.DataFrame(ev_rows)
    page_views = pd.DataFrame(pv_rows)

    # --- hourly activity -------------------------------------------------------
    hour_p = np.array([1, 0.5, 0.3, 0.2, 0.2, 0.4, 1, 2, 3, 3, 3, 3, 4, 3, 3, 3, 3, 4, 5, 6, 6, 5, 3, 2], float)
    hour_p /= hour_p.sum()
    h_rows = []
    for ev, day_idx, weights in (("purchase", rd, purchases), ("app_uninstall", uninstall_day, None),
                                 ("app_open", rd, sessions)):
        w = np.ones(len(day_idx), dtype=int) if weights is None else weights
        dow = weekday[day_idx] if len(day_idx) else np.array([], int)
        rep_dow = np.repeat(dow, w)
        hrs = rng.choice(24, size=len(rep_dow), p=hour_p)
        grid = np.zeros((7, 24), dtype=np.int64)
        np.add.at(grid, (rep_dow, hrs), 1)
        for dw in range(7):
            for h in range(24):
                h_rows.append({"event": ev, "day_of_week": dw + 1, "hour": h, "events": int(grid[dw, h])})
    hourly = pd.DataFrame(h_rows)

    # --- quizzes and courses -----------------------------------------------------
    q_rows = []
    for d in range(n_days):
        for q in range(1, 6):
            att = int(rng.poisson(max(dau[d], 1) * 0.04 / q))
            if att == 0:
                continue
            part = max(1, int(att * 0.8))
            passes = int(rng.binomial(att, 0.35 + 0.08 * q))
            q_rows.append({"activity_date": dates[d], "quiz_id": f"quiz-{q}", "attempts": att, "participants": part,
                           "passes": passes, "pass_rate": passes / att,
                           "avg_score_pct": float(np.round(rng.uniform(45, 90), 1)),
                           "avg_duration_s": float(np.round(rng.uniform(60, 600), 1))})
    quiz_daily = pd.DataFrame(q_rows, columns=[c for c, _ in SCHEMAS["quiz_daily"]])
    learners = rng.integers(max(2, n_users // 20), max(3, n_users // 4), 6)
    completions = (learners * rng.uniform(0.1, 0.7, 6)).astype(int)
    course_progress = pd.DataFrame({"course_id": [f"course-{i}" for i in range(1, 7)], "learners": learners,
                                    "completions": completions, "completion_rate": completions / learners})

    # --- users, segments, clusters ---------------------------------------------------
    active_days = np.bincount(ru, minlength=n_users)
    ev_u = np.bincount(ru, weights=events, minlength=n_users).astype(np.int64)
    orders_u = np.bincount(ru, weights=purchases, minlength=n_users).astype(np.int64)
    rev_u = np.round(np.bincount(ru, weights=revenue, minlength=n_users), 2)
    bal_u = np.bincount(ru, weights=points_earned - points_redeemed, minlength=n_users).astype(np.int64)
    pos_rev = rev_u[rev_u > 0]
    hv = np.quantile(pos_rev, 0.9) if len(pos_rev) else np.inf
    tenure = np.maximum(last - first_seen + 1, 1)
    segment = np.where(first_seen >= n_days - 14, "new",
                       np.where((last_act < last - 30), "dormant",
                                np.where(rev_u >= hv, "high_value",
                                         np.where(active_days / tenure >= 0.2, "regular", "occasional"))))
    feats = np.column_stack([active_days, ev_u / np.maximum(active_days, 1), rev_u, bal_u]).astype(float)
    z = (feats - feats.mean(0)) / np.where(feats.std(0) > 0, feats.std(0), 1)
    k = 4 if n_users >= 8 else 1
    cluster, centers_z = _kmeans(z.copy(), k, rng)
    _, _, vt = np.linalg.svd(z - z.mean(0), full_matrices=False)
    pcs = (z - z.mean(0)) @ vt[:2].T
    labels_by_rank = ["Lapsed", "Casual", "Engaged", "Power buyers"]
    order = np.argsort([feats[cluster == j, 0].mean() + feats[cluster == j, 2].mean() if (cluster == j).any()
                        else -1 for j in range(k)])
    label = {int(j): labels_by_rank[-k:][r] for r, j in enumerate(order)}
    samp = rng.choice(n_users, size=min(n_users, 1500), replace=False)
    dz = np.sqrt(((z[samp][:, None, :] - z[samp][None, :, :]) ** 2).sum(-1))
    cs_ = cluster[samp]
    sil = np.zeros(len(samp))
    for i in range(len(samp)):
        own = cs_ == cs_[i]
        a = dz[i, own].sum() / max(own.sum() - 1, 1)
        b = min((dz[i, cs_ == j].mean() for j in range(k) if j != cs_[i] and (cs_ == j).any()), default=0.0)
        sil[i] = (b - a) / max(a, b) if max(a, b) > 0 else 0
    users = pd.DataFrame({
        "user_id": uid, "first_seen_date": dates[np.minimum(first_seen, last)],
        "last_active_date": [dates[x] if x >= 0 else None for x in last_act],
        "gender": gender, "age": age, "age_group": age_group, "country": country, "signup_channel": channel,
        "active_days": active_days.astype(np.int64), "events": ev_u, "orders": orders_u, "revenue": rev_u,
        "points_balance": bal_u, "segment": segment, "cluster": cluster.astype(np.int32),
        "cluster_pc1": pcs[:, 0], "cluster_pc2": pcs[:, 1]})
    seg = users.groupby("segment").agg(users=("user_id", "size"), avg_revenue=("revenue", "mean"),
                                       avg_active_days=("active_days", "mean")).reset_index()
    seg["share"] = seg.users / n_users
    cp_rows = []
    for j in range(k):
        m = cluster == j
        cp_rows.append({"cluster": j, "label": label[j], "users": int(m.sum()), "share": m.sum() / n_users,
                        "silhouette": float(sil[cs_ == j].mean()) if (cs_ == j).any() else np.nan,
                        "centroid_active_days": feats[m, 0].mean() if m.any() else np.nan,
                        "centroid_events_per_day": feats[m, 1].mean() if m.any() else np.nan,
                        "centroid_revenue": feats[m, 2].mean() if m.any() else np.nan,
                        "centroid_points_balance": feats[m, 3].mean() if m.any() else np.nan})
    cluster_profiles = pd.DataFrame(cp_rows)

    quarantine = pd.DataFrame({
        "feed": ["events", "events", "events", "events", "users", "users"],
        "reason": ["invalid_json", "missing_user_id", "bad_timestamp", "unknown_event", "invalid_json",
                   "bad_birth_date"],
        "lines": [12, 7, 5, 3, 2, 1]})

    frames = {
        "engagement_daily": engagement_daily, "engagement_monthly": engagement_monthly,
        "lifecycle_daily": lifecycle, "demographics": demographics, "loyalty_daily": loyalty_daily,
        "loyalty_balances": loyalty_balances, "user_activity_daily": uad, "users": users,
        "retention_daily": retention_daily, "retention_weekly": retention_weekly, "funnel_daily": funnel,
        "funnel_entries": funnel_entries,
        "revenue_daily": revenue_daily, "user_revenue": user_revenue, "sessions_daily": sessions_daily,
        "event_counts_daily": event_counts, "page_views_daily": page_views, "hourly_activity": hourly,
        "quiz_daily": quiz_daily, "course_progress": course_progress, "segment_summary": seg,
        "cluster_profiles": cluster_profiles, "quarantine_summary": quarantine,
        "revenue_by_currency_daily": revenue_by_currency,
    }
    for name in MONEY_TABLES:
        frames[name] = frames[name].assign(reporting_currency=REPORTING_CURRENCY)
    return frames, start, end


def pipeline_runs_frame(end: date, tz: str, n_runs: int = 2) -> pd.DataFrame:
    """A few ops.pipeline_runs rows; the latest one carries the timezone."""
    rows = []
    for i in range(n_runs):
        started = datetime(end.year, end.month, end.day, 23, 0, tzinfo=timezone.utc) + timedelta(hours=i + 1)
        rows.append({
            "run_id": f"run-{i + 1:04d}", "started_at": started, "ended_at": started + timedelta(seconds=95 + i),
            "status": "success", "timezone": tz, "files": 3 + i, "lines": 12000 + i, "silver_rows": 11900 + i,
            "duplicates": 50, "quarantined": 30,
            "rows_json": json.dumps({"silver.events": 11900 + i, "gold.engagement_daily": 70}),
            "quarantine_json": json.dumps({"invalid_json": 14, "missing_user_id": 7}),
            "durations_json": json.dumps({"bronze": 4.2, "silver": 18.5, "gold": 61.0 + i, "ops": 1.1}),
            "message": ""})
    return pd.DataFrame(rows)


def write_erasures(root: Path | str, rows: list[dict]) -> Path:
    """Append ops.erasures rows as `lakehouse forget` logs them (one per user id; missing keys null)."""
    df = pd.DataFrame([{c: r.get(c) for c, _ in ERASURES_SCHEMA} for r in rows])
    return write_table(Path(root), "ops", "erasures", _to_arrow("erasures", df, ERASURES_SCHEMA), mode="append")


SILVER_EVENTS_SCHEMA = [
    ("event_id", S), ("event", S), ("ts", TS), ("user_id", S), ("session_id", S), ("country", S), ("city", S),
    ("device", S), ("os", S), ("app_version", S), ("referrer", S), ("page", S), ("item_id", S), ("item_type", S),
    ("category", S), ("price", F), ("quantity", I), ("cart_value", F), ("order_id", S), ("amount", F),
    ("currency", S), ("payment_status", S), ("course_id", S), ("progress_pct", F), ("quiz_id", S), ("score", F),
    ("max_score", F), ("passed", B), ("duration_s", F), ("points", L), ("reason", S), ("reward", S),
    ("channel", S), ("properties", S), ("source_file", S), ("batch_id", L), ("ingested_at", TS)]
SILVER_USERS_SCHEMA = [("user_id", S), ("registered_at", TS), ("gender", S), ("birth_date", D), ("age", I),
                       ("country", S), ("city", S), ("signup_channel", S), ("email_hash", S), ("updated_at", TS),
                       ("source_file", S), ("batch_id", L)]
SILVER_EVENT_NAMES = ["page_view", "item_view", "add_to_cart", "purchase", "points_earned", "session_start"]


def silver_frames(user_ids, start: date, n_days: int, n_events: int = 600, seed: int = 5) -> dict[str, pd.DataFrame]:
    """Small silver.events / silver.sessions / silver.users frames for the given users, with personal
    columns (city, referrer, raw properties, email_hash) filled so that tests can see them withheld."""
    rng = np.random.default_rng(seed)
    users = np.asarray(list(user_ids), dtype=object)
    u = users[rng.integers(0, len(users), n_events)]
    day = rng.integers(0, n_days, n_events)
    ts = (pd.Timestamp(start, tz="UTC") + pd.to_timedelta(day, unit="D")
          + pd.to_timedelta(rng.integers(0, 86_400_000, n_events), unit="ms"))
    event = np.asarray(SILVER_EVENT_NAMES, dtype=object)[rng.integers(0, len(SILVER_EVENT_NAMES), n_events)]
    purchase = event == "purchase"
    page = np.where(event == "page_view", np.asarray(PAGES, dtype=object)[rng.integers(0, len(PAGES), n_events)],
                    None)
    amount = np.where(purchase, np.round(rng.uniform(1, 80, n_events), 2), np.nan)
    points = np.where(event == "points_earned", rng.integers(1, 50, n_events).astype(float), np.nan)
    events = pd.DataFrame({
        "event_id": [f"e{i:06d}" for i in range(n_events)], "event": event, "ts": ts,
        "user_id": u, "session_id": [f"s-{x}-{d}" for x, d in zip(u, day)],
        "country": np.asarray(COUNTRIES, dtype=object)[rng.integers(0, len(COUNTRIES), n_events)],
        "city": "Malmö", "device": np.asarray(DEVICES, dtype=object)[rng.integers(0, len(DEVICES), n_events)],
        "os": "android", "app_version": "3.1.0", "referrer": [f"https://mail.example/?to={x}@example.com" for x in u],
        "page": page, "item_id": None, "item_type": None, "category": None, "price": np.nan, "quantity": np.nan,
        "cart_value": np.nan, "order_id": [f"o{i}" if p else None for i, p in enumerate(purchase)],
        "amount": amount, "currency": np.where(purchase, "USD", None), "payment_status": np.where(purchase, "success",
                                                                                               None),
        "course_id": None, "progress_pct": np.nan, "quiz_id": None, "score": np.nan, "max_score": np.nan,
        "passed": False, "duration_s": np.nan, "points": points, "reason": np.where(event == "points_earned",
                                                                                  "streak", None),
        "reward": None, "channel": None,
        "properties": [json.dumps({"email": f"{x}@example.com"}) for x in u],
        "source_file": "/landing/events/part-1.jsonl", "batch_id": day // 30, "ingested_at": ts,
    })
    g = events.groupby(["user_id", "session_id"], as_index=False).agg(
        session_start=("ts", "min"), session_end=("ts", "max"), events=("ts", "size"))
    g["duration_s"] = (g.session_end - g.session_start).dt.total_seconds()
    g["is_derived"] = False
    profiles = pd.DataFrame({"user_id": users, "registered_at": pd.Timestamp(start, tz="UTC"), "gender": "female",
                             "birth_date": date(1990, 5, 17), "age": 35, "country": "SE", "city": "Malmö",
                             "signup_channel": "organic",
                             "email_hash": [hashlib.sha256(str(x).encode()).hexdigest() for x in users],
                             "updated_at": pd.Timestamp(start, tz="UTC"), "source_file": "users.csv", "batch_id": 0})
    return {"events": events, "sessions": g, "users": profiles}


def sessions_arrow(df: pd.DataFrame) -> pa.Table:
    """silver.sessions as the pipeline writes it (duration_s is decimal(18,6))."""
    t = _to_arrow("sessions", df, [("user_id", S), ("session_id", S), ("session_start", TS), ("session_end", TS),
                                   ("events", L), ("duration_s", F), ("is_derived", B)])
    return t.set_column(5, "duration_s", t.column("duration_s").cast(pa.decimal128(18, 6)))


def write_silver(root: Path | str, frames: dict[str, pd.DataFrame], mode: str = "overwrite") -> None:
    """Write silver.events (partitioned by batch_id, as the pipeline does), silver.sessions, silver.users."""
    root = Path(root)
    for name, table in (("events", _to_arrow("events", frames["events"], SILVER_EVENTS_SCHEMA)),
                        ("sessions", sessions_arrow(frames["sessions"])),
                        ("users", _to_arrow("users", frames["users"], SILVER_USERS_SCHEMA))):
        path = root / "silver" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        write_deltalake(str(path), table, mode=mode, partition_by=["batch_id"] if name == "events" else None)


def build_fake_lake(root: Path | str, n_users: int = 80, n_days: int = 70, start: date = date(2024, 1, 1),
                    seed: int = 42, tz: str = "Europe/Berlin", skip: tuple[str, ...] = (),
                    with_runs: bool = True) -> FakeLake:
    """Write every gold table (minus `skip`) and ops.pipeline_runs under root."""
    root = Path(root)
    frames, start, end = generate(n_users, n_days, start, seed, tz)
    for name, df in frames.items():
        if name in skip:
            continue
        write_table(root, "gold", name, _to_arrow(name, df))
    if with_runs:
        runs = pipeline_runs_frame(end, tz)
        frames["pipeline_runs"] = runs
        write_table(root, "ops", "pipeline_runs", _to_arrow("pipeline_runs", runs, RUNS_SCHEMA))
    return FakeLake(root=root, start=start, end=end, n_users=len(frames["users"]), timezone=tz, frames=frames)


def main(argv: list[str] | None = None) -> None:
    """Build a fake lake from the command line (for benchmarks and screenshots)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--users", type=int, default=10000)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--start", default="2024-01-01")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--timezone", default="Europe/Berlin")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    lake = build_fake_lake(args.out, args.users, args.days, date.fromisoformat(args.start), args.seed, args.timezone)
    rows = len(lake.frames["user_activity_daily"])
    print(f"fake lake at {lake.root}: {lake.n_users} users, {args.days} days, {rows} user-day rows "
          f"({time.perf_counter() - t0:.1f}s)")


if __name__ == "__main__":
    main()
