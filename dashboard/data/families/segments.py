"""Segments and clusters: sizes, profiles and active users per segment over time, cluster points."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ...filters import Filters
from ..activity import activity, distinct_pairs, period_rows, users_frame, users_mask
from ..lake import UAD, USERS, cached, gold, resolve
from ..periods import Periods


def segments(f: Filters) -> pd.DataFrame | None:
    """segment_summary, or the same figures from gold.users under a demographic filter."""
    if not f.demographic:
        s = gold("segment_summary")
        if s is not None:
            return s.sort_values("users", ascending=False).reset_index(drop=True)
    users = users_frame()
    if users is None or "segment" not in users.columns:
        return None
    u = users[users_mask(users, f)]
    g = u.groupby("segment", as_index=False).agg(users=("user_id", "size"), avg_revenue=("revenue", "mean"),
                                                 avg_active_days=("active_days", "mean"))
    g["share"] = g["users"] / max(len(u), 1)
    return g.sort_values("users", ascending=False).reset_index(drop=True)


def segment_profiles(f: Filters) -> pd.DataFrame | None:
    """Per segment: users and averages of behaviour and age from gold.users (demographic filter)."""
    users = users_frame()
    if users is None or "segment" not in users.columns:
        return None
    u = users[users_mask(users, f)]
    aggs = {"users": ("user_id", "size")}
    for c in ("age", "active_days", "events", "orders", "revenue", "points_balance"):
        if c in u.columns:
            aggs[f"avg_{c}"] = (c, "mean")
    return u.groupby("segment", as_index=False).agg(**aggs).sort_values("users", ascending=False)


def segment_trend(f: Filters) -> pd.DataFrame | None:
    """Distinct active users per period and (current) segment."""
    rng = resolve(f)
    act = activity()
    users = users_frame()
    if rng is None or act is None or users is None or "segment" not in users.columns:
        return None
    lo, hi = rng

    def build():
        per = Periods.of(lo, hi, f.grain)
        k = per.k
        seg_names, seg_codes = np.unique(users["segment"].fillna("unknown").to_numpy(dtype=object),
                                         return_inverse=True)
        seg_of = np.full(act.n_users, len(seg_names), dtype=np.int64)
        seg_of[: len(users)] = seg_codes
        _, u, p = period_rows(act, f, per)
        first = distinct_pairs(u, p)
        s, q = seg_of[u[first]], p[first] - per.codes[0]
        grid = np.bincount(s * k + q, minlength=(len(seg_names) + 1) * k).reshape(-1, k)
        frames = [per.frame(segment=name, active=grid[i].astype(float)) for i, name in enumerate(seg_names)]
        return pd.concat(frames, ignore_index=True) if frames else None
    return cached("segment_trend", (UAD, USERS), (f.key(), lo, hi), build)


def clusters(f: Filters) -> pd.DataFrame | None:
    """cluster_profiles (users/share recomputed from gold.users under a demographic filter)."""
    cp = gold("cluster_profiles")
    users = users_frame()
    if cp is None:
        if users is None or "cluster" not in users.columns:
            return None
        cp = users.groupby("cluster", as_index=False).agg(users=("user_id", "size"))
        cp["label"] = "cluster " + cp["cluster"].astype(str)
        cp["share"] = cp["users"] / cp["users"].sum()
    if f.demographic and users is not None and "cluster" in users.columns:
        u = users[users_mask(users, f)]
        counts = u.groupby("cluster").size()
        cp = cp.copy()
        cp["users"] = cp["cluster"].map(counts).fillna(0).astype(int)
        cp["share"] = cp["users"] / max(len(u), 1)
    return cp.sort_values("cluster").reset_index(drop=True)


def cluster_points(f: Filters, max_points: int = 800) -> pd.DataFrame | None:
    """Users on the two principal axes (cluster_pc1, cluster_pc2), a deterministic sample at most."""
    users = users_frame()
    if users is None or not {"cluster_pc1", "cluster_pc2", "cluster"} <= set(users.columns):
        return None
    u = users[users_mask(users, f)]
    u = u[u["cluster_pc1"].notna() & u["cluster_pc2"].notna()]
    if len(u) > max_points:
        u = u.sample(max_points, random_state=0)
    cp = gold("cluster_profiles")
    labels = dict(zip(cp["cluster"], cp["label"])) if cp is not None and "label" in cp.columns else {}
    out = u[["user_id", "cluster", "cluster_pc1", "cluster_pc2"] + [c for c in ("segment",) if c in u.columns]]
    out = out.assign(label=[labels.get(c, f"cluster {c}") for c in out["cluster"]])
    return out.reset_index(drop=True)
