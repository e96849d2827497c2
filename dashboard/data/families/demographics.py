"""Demographics: users, active users and new users by gender x age group x country."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd

from ...filters import Filters
from ..activity import USER_DIMS, activity, row_index, user_index, users_frame, users_mask
from ..lake import UAD, USERS, cached, gold, lake_bounds, resolve
from ..periods import d2i


def demographics(f: Filters) -> pd.DataFrame | None:
    """Users, active users and new users by gender x age group x country.

    Without filters and with the last-30-days range this is gold.demographics; otherwise users come
    from gold.users (country/gender/age filters) and active users are the distinct users active in
    the range (all filters, incl. device).
    """
    rng = resolve(f)
    bounds = lake_bounds()
    if rng is None or bounds is None:
        return None
    lo, hi = rng
    dims = ["gender", "age_group", "country"]
    last30 = (hi == bounds[1]) and (lo == max(bounds[0], bounds[1] - timedelta(days=29)))
    if not f.user_filtered and last30 and (g := gold("demographics")) is not None:
        return g.rename(columns={"active_users_30d": "active_users", "new_users_30d": "new_users"})[
            dims + ["users", "active_users", "new_users"]]

    def build():
        users = users_frame()
        ui = user_index()
        act = activity()
        if users is None or ui is None:
            return None
        um = users_mask(users, f)
        g, a, c = (ui.codes[d] for d in USER_DIMS)
        na, nc = len(ui.cats["age_group"]), len(ui.cats["country"])
        size = len(ui.cats["gender"]) * na * nc
        combo = (g.astype(np.int64) * na + a) * nc + c
        new = um & (ui.first_seen >= d2i(lo)) & (ui.first_seen <= d2i(hi))
        active = np.zeros(len(users), dtype=bool)
        if act is not None:
            rows = row_index(act, f, d2i(lo), d2i(hi))
            au = act.user[rows]
            active[au[au < len(users)]] = True
            active &= um
        counts = {name: np.bincount(combo[m], minlength=size) for name, m in
                  (("users", um), ("active_users", active), ("new_users", new))}
        keep = np.flatnonzero(counts["users"])
        gi, rest = np.divmod(keep, na * nc)
        ai, ci = np.divmod(rest, nc)
        return pd.DataFrame({
            "gender": np.array(ui.cats["gender"], dtype=object)[gi],
            "age_group": np.array(ui.cats["age_group"], dtype=object)[ai],
            "country": np.array(ui.cats["country"], dtype=object)[ci],
            **{name: v[keep].astype(np.int64) for name, v in counts.items()}})

    return cached("demographics", (UAD, USERS), (f.key(), lo, hi), build)
