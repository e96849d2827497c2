"""Users: the user explorer (one page of gold.users, filtered, searched, sorted), its CSV export, one
user's profile and daily activity."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from ...filters import Filters
from ..activity import NUMERIC, activity, row_index, users_frame, users_mask
from ..lake import UAD, USERS, cached, gold, resolve
from ..periods import d2i, day_stamps


# the key columns first, so they are in view without scrolling sideways
USER_TABLE_COLUMNS = ("user_id", "segment", "active_days", "events", "orders", "revenue", "points_balance",
                      "last_active_date", "first_seen_date", "country", "age_group", "gender", "signup_channel",
                      "cluster", "age")


def active_user_ids(f: Filters) -> np.ndarray | None:
    """Ids of the users active in f's date range (under its filters); None when no day of the lake is in it."""
    rng = resolve(f)
    act = activity()
    if rng is None or act is None:
        return None
    sel = row_index(act, f, d2i(rng[0]), d2i(rng[1]))
    return act.user_ids[np.unique(act.user[sel])]


def users_page(f: Filters, search: str = "", segment: str | None = None, cluster: str | int | None = None,
               sort_by: list[dict] | None = None, page: int = 0, page_size: int = 20, active_only: bool = False
               ) -> tuple[pd.DataFrame, int] | None:
    """One page of gold.users: demographic filters, text search, segment/cluster, sorting; with active_only,
    only the users active in f's date range."""
    users = users_frame()
    if users is None:
        return None
    sort_key = tuple((s.get("column_id"), s.get("direction")) for s in (sort_by or []))
    rng = resolve(f) if active_only else None

    def build():
        m = users_mask(users, f)
        if active_only:
            ids = active_user_ids(f)
            m &= users["user_id"].isin(ids if ids is not None else []).to_numpy()
        if segment:
            m &= (users["segment"] == segment).to_numpy() if "segment" in users.columns else False
        if cluster not in (None, ""):
            try:
                m &= (users["cluster"] == int(cluster)).to_numpy() if "cluster" in users.columns else False
            except ValueError:
                m &= False
        if search:
            s = search.strip().lower()
            hit = np.zeros(len(users), dtype=bool)
            for c in ("user_id", "country", "segment", "signup_channel", "gender", "age_group"):
                if c in users.columns:
                    hit |= users[c].fillna("").astype(str).str.lower().str.contains(s, regex=False).to_numpy()
            m &= hit
        out = users.loc[m, [c for c in USER_TABLE_COLUMNS if c in users.columns]]
        if sort_key:
            cols = [c for c, _ in sort_key if c in out.columns]
            asc = [d == "asc" for c, d in sort_key if c in out.columns]
            if cols:
                out = out.sort_values(cols, ascending=asc, na_position="last", kind="stable")
        return out
    rows = cached("users_page", (USERS, UAD), (f.country, f.gender, f.age_group, search, segment, str(cluster),
                                               sort_key, active_only, rng), build)
    start = max(page, 0) * page_size
    return rows.iloc[start: start + page_size], len(rows)


def users_export(f: Filters, search: str = "", segment=None, cluster=None, sort_by=None,
                 active_only: bool = False) -> pd.DataFrame | None:
    """The whole filtered users list (for the CSV download)."""
    res = users_page(f, search, segment, cluster, sort_by, 0, 10 ** 9, active_only)
    return None if res is None else res[0]


def user_profile(user_id: str) -> dict | None:
    """One user's attributes from gold.users (None when unknown); never an email."""
    users = users_frame()
    if users is None or not user_id:
        return None
    row = users[users["user_id"] == user_id]
    if not len(row):
        return None
    rec = row.iloc[0].to_dict()
    lb = gold("loyalty_balances")
    if lb is not None:
        b = lb[lb["user_id"] == user_id]
        if len(b):
            rec["loyalty_earned"] = b["points_earned"].iloc[0]
            rec["loyalty_redeemed"] = b["points_redeemed"].iloc[0]
    return rec


def user_activity(user_id: str, lo: date | None = None, hi: date | None = None) -> pd.DataFrame | None:
    """A user's rows of user_activity_daily (optionally within [lo, hi])."""
    act = activity()
    if act is None or not user_id:
        return None
    hits = np.flatnonzero(act.user_ids == user_id)
    cols = ["date", "events", "sessions", "purchases", "revenue", "points_earned", "points_redeemed", "device"]
    if not len(hits):
        return pd.DataFrame(columns=cols)
    c = hits[0]
    s, e = act.starts[c], act.starts[c + 1]
    day = act.day[s:e]
    keep = np.ones(len(day), dtype=bool)
    if lo is not None:
        keep &= day >= d2i(lo)
    if hi is not None:
        keep &= day <= d2i(hi)
    sl = np.arange(s, e)[keep]
    out = pd.DataFrame({"date": day_stamps(act.day[sl])})
    for col in NUMERIC:
        out[col] = act.num[col][sl]
    out["device"] = np.array(act.cats["device"], dtype=object)[act.codes["device"][sl]] if len(sl) else []
    return out[cols]
