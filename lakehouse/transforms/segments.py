"""Gold: rule-based user segments and k-means behavioural clusters.

Segments: an ordered rule set over recency, frequency, monetary value and tenure; the first rule
that matches wins, the last one catches everybody, so every user has exactly one segment.

Clusters: Spark MLlib k-means over standardised behavioural features (log1p on the heavy-tailed
ones), k chosen by the best silhouette within [k_min, k_max], fixed seed and a deterministic row
order, clusters renumbered by centroid (revenue, then size, ...) and named from their centroids.
See docs/spec/metrics.md ("Segments", "Clusters") for the full rule set.
"""

from __future__ import annotations

import logging
import math
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Mapping, Sequence

import pyspark.sql.functions as F
from pyspark.ml.clustering import KMeans
from pyspark.ml.evaluation import ClusteringEvaluator
from pyspark.ml.feature import PCA, StandardScaler, VectorAssembler
from pyspark.ml.functions import vector_to_array
from pyspark.sql import Column, DataFrame, SparkSession, Window

from lakehouse.transforms.common import DateRange, in_order, local_frame, ratio

log = logging.getLogger(__name__)

# ---------------------------------------------------------------- settings

SEGMENTS = ("new", "dormant", "high_value", "at_risk", "regular", "occasional")

DEFAULT_SEGMENT_SETTINGS = {
    "new_days": 7,                   # first seen within the last 7 days of the range
    "dormant_days": 30,              # no active day within the last 30 days
    "at_risk_days": 14,              # no active day within the last 14 days (but some in 30)
    "regular_min_active_days": 4,    # active days within the last `dormant_days` days
    "high_value_quantile": 0.9,      # top decile of buyers' lifetime revenue ...
    "high_value_min_revenue": None,  # ... or at least this revenue (None: quantile only)
}

FEATURES = ("active_days", "sessions", "revenue", "points_earned", "recency_days", "tenure_days")
LOG_FEATURES = ("active_days", "sessions", "revenue", "points_earned")

DEFAULT_CLUSTER_SETTINGS = {
    "k_min": 2,
    "k_max": 6,
    "seed": 42,
    "max_iter": 10,
    "parallel_fits": 4,              # k candidates fitted concurrently
    "single_partition_users": 200000,  # MLlib path: below this many users k-means runs on one partition
    "driver_max_users": 200000,      # up to this many users cluster on the driver (numpy); 0 = always MLlib
    "features": list(FEATURES),
    "log_features": list(LOG_FEATURES),
}

SINGLE_CLUSTER_LABEL = "all users"


def _settings(defaults: Mapping, given: Mapping | None) -> dict:
    out = dict(defaults)
    out.update({k: v for k, v in (given or {}).items()})
    return out


# ---------------------------------------------------------------- per-user behaviour

def user_behaviour(users: DataFrame, days: DataFrame, rng: DateRange, recent_days: int = 30) -> DataFrame:
    """users + sessions, points_earned, recent_active_days, recency_days, tenure_days (as of range end).

    recency_days = days from the last active date to the range end (a never-active user: from
    first_seen_date, else from the range start); tenure_days = days from first_seen_date to the
    range end (0 when unknown or after the end).
    """
    since = F.date_sub(F.lit(rng.end), recent_days - 1)
    per_user = days.groupBy("user_id").agg(
        F.sum("sessions").alias("_sessions"),
        F.sum("points_earned").alias("_points_earned"),
        F.sum(F.when(F.col("activity_date") >= since, 1).otherwise(0)).alias("_recent_active_days"),
    )
    end = F.lit(rng.end)
    return (
        users.join(per_user, "user_id", "left")
        .withColumn("sessions", F.coalesce("_sessions", F.lit(0)).cast("long"))
        .withColumn("points_earned", F.coalesce("_points_earned", F.lit(0)).cast("long"))
        .withColumn("recent_active_days", F.coalesce("_recent_active_days", F.lit(0)).cast("long"))
        .withColumn("recency_days", F.greatest(F.lit(0), F.datediff(end, F.coalesce(
            "last_active_date", "first_seen_date", F.lit(rng.start)))).cast("long"))
        .withColumn("tenure_days", F.greatest(F.lit(0), F.datediff(end, F.coalesce("first_seen_date", end))).cast("long"))
        .drop("_sessions", "_points_earned", "_recent_active_days")
    )


# ---------------------------------------------------------------- segments

def segment_rule(rng: DateRange, s: Mapping, high_value_cut: Column) -> Column:
    """The ordered rule set (first match wins) as one column expression."""
    end = F.lit(rng.end)
    new = F.col("first_seen_date") >= F.date_sub(end, int(s["new_days"]) - 1)
    dormant = F.col("last_active_date").isNull() | (F.col("last_active_date") < F.date_sub(end, int(s["dormant_days"]) - 1))
    high_value = (F.col("revenue") > 0) & (F.col("revenue") >= high_value_cut)
    at_risk = F.col("last_active_date") < F.date_sub(end, int(s["at_risk_days"]) - 1)
    regular = F.col("recent_active_days") >= int(s["regular_min_active_days"])
    t = lambda c: F.coalesce(c, F.lit(False))  # noqa: E731 - a null comparison never matches
    return (
        F.when(t(new), F.lit("new"))
        .when(t(dormant), F.lit("dormant"))
        .when(t(high_value), F.lit("high_value"))
        .when(t(at_risk), F.lit("at_risk"))
        .when(t(regular), F.lit("regular"))
        .otherwise(F.lit("occasional"))
    )


def assign_segments(users: DataFrame, days: DataFrame, rng: DateRange, settings: Mapping | None = None) -> DataFrame:
    """users + `segment` (exactly one per user; see SEGMENTS for the order of the rules)."""
    s = _settings(DEFAULT_SEGMENT_SETTINGS, settings)
    beh = user_behaviour(users, days, rng, int(s["dormant_days"]))
    cut = users.filter(F.col("revenue") > 0).agg(
        F.percentile(F.col("revenue"), float(s["high_value_quantile"])).alias("_q"))
    min_rev = s.get("high_value_min_revenue")
    cut_col = F.col("_q") if min_rev is None else F.least(F.coalesce(F.col("_q"), F.lit(float(min_rev))), F.lit(float(min_rev)))
    out = beh.crossJoin(F.broadcast(cut)).withColumn("segment", segment_rule(rng, s, cut_col))
    return out.select(*users.columns, "segment")


def segment_summary(segmented: DataFrame) -> DataFrame:
    """Users, share, mean revenue and mean active days per segment (every segment listed, zero-filled)."""
    spark = segmented.sparkSession
    names = local_frame(spark, list(enumerate(SEGMENTS)), "_order int, segment string")
    per = segmented.groupBy("segment").agg(
        F.count(F.lit(1)).alias("users"),
        F.avg(F.col("revenue").cast("double")).alias("avg_revenue"),
        F.avg(F.col("active_days").cast("double")).alias("avg_active_days"),
    )
    # Unknown segment names (none with the built-in rules) are kept after the known ones. The total
    # is the sum over the segments (every user is in one): a window over these few rows, not a
    # one-row frame joined in (a broadcast job).
    out = names.join(per, "segment", "full").withColumn("users", F.coalesce("users", F.lit(0)))
    return out.select(
        "segment",
        F.col("users").cast("long").alias("users"),
        ratio(F.col("users"), F.sum("users").over(Window.partitionBy())).alias("share"),
        F.col("avg_revenue").cast("double").alias("avg_revenue"),
        F.col("avg_active_days").cast("double").alias("avg_active_days"),
        F.coalesce("_order", F.lit(len(SEGMENTS))).alias("_order"),
    ).transform(in_order("_order", "segment")).drop("_order")


# ---------------------------------------------------------------- cluster labels

# Archetypes: (label, weights on the standardised centroid, conditions that must all hold).
# A condition (feature, ">", t) means z[feature] > t; (feature, "<", t) means z[feature] < t.
ARCHETYPES: tuple[tuple[str, dict[str, float], tuple[tuple[str, str, float], ...]], ...] = (
    ("frequent buyers", {"revenue": 1.0, "active_days": 0.5}, (("revenue", ">", 0.5),)),
    ("loyalty fans", {"points_earned": 1.0, "active_days": 0.25}, (("points_earned", ">", 0.5),)),
    ("dormant", {"recency_days": 1.0, "active_days": -0.5}, (("recency_days", ">", 0.5),)),
    ("new users", {"tenure_days": -1.0, "recency_days": -0.25}, (("tenure_days", "<", -0.5),)),
    ("engaged browsers", {"sessions": 0.5, "active_days": 0.5, "revenue": -1.0},
     (("sessions", ">", 0.5), ("revenue", "<", 0.5))),
    ("casual browsers", {"sessions": -0.5, "active_days": -0.5, "recency_days": -0.5},
     (("sessions", "<", 0.0), ("revenue", "<", 0.0), ("recency_days", "<", 0.5))),
)
FEATURE_WORDS = {
    "active_days": "active days", "sessions": "sessions", "revenue": "revenue",
    "points_earned": "points", "recency_days": "recency", "tenure_days": "tenure",
}


def _describe(z: Mapping[str, float]) -> str:
    """Fallback label from the (up to two) most deviating features, e.g. 'high revenue, low sessions'."""
    top = sorted(((abs(v), f) for f, v in z.items() if abs(v) >= 0.25), key=lambda t: (-round(t[0], 9), t[1]))[:2]
    if not top:
        return "average users"
    return ", ".join(f"{'high' if z[f] > 0 else 'low'} {FEATURE_WORDS.get(f, f)}" for _, f in top)


def label_clusters(centers: Sequence[Mapping[str, float]]) -> list[str]:
    """One unique readable label per cluster, from its standardised centroid (z-scores).

    A cluster is eligible for an archetype when the archetype's conditions hold and its score
    (sum of weight x z[feature], missing features 0) is positive; eligible pairs are taken
    greedily by descending score (ties: lower cluster id, then archetype order), each cluster and
    archetype used once. Other clusters are described by their most deviating features
    ("high revenue, low sessions", or "average users"); a repeated description gets
    " (cluster <id>)".
    """
    ops = {">": lambda a, b: a > b, "<": lambda a, b: a < b}
    pairs = []
    for c, z in enumerate(centers):
        for a, (name, weights, conditions) in enumerate(ARCHETYPES):
            if not all(ops[op](float(z.get(f, 0.0)), t) for f, op, t in conditions):
                continue
            score = sum(w * float(z.get(f, 0.0)) for f, w in weights.items())
            if score > 0:
                pairs.append((-round(score, 9), c, a, name))
    labels: dict[int, str] = {}
    used: set[int] = set()
    for _, c, a, name in sorted(pairs):
        if c in labels or a in used:
            continue
        labels[c] = name
        used.add(a)
    out = [labels.get(c) or _describe({f: float(v) for f, v in z.items()}) for c, z in enumerate(centers)]
    seen: dict[str, int] = {}
    for label in out:
        seen[label] = seen.get(label, 0) + 1
    return [f"{label} (cluster {c})" if seen[label] > 1 else label for c, label in enumerate(out)]


# ---------------------------------------------------------------- clustering

@dataclass(frozen=True)
class ClusterResult:
    users: DataFrame        # input users + cluster, cluster_pc1, cluster_pc2
    profiles: DataFrame     # cluster_profiles
    k: int
    silhouette: float | None
    cached: DataFrame | None = None  # the cached feature frame behind `users`
    timings: dict | None = None      # seconds per phase

    def unpersist(self) -> None:
        """Free the cached feature frame (call after `users` has been written)."""
        if self.cached is not None:
            self.cached.unpersist()


def _num(name: str) -> Column:
    return F.coalesce(F.col(name).cast("double"), F.lit(0.0))


def _order_key(row: Mapping, features: Sequence[str]) -> tuple:
    """Stable cluster order: centroid revenue desc, size desc, then the other centroid values."""
    rest = tuple(-float(row.get(f"c_{f}") or 0.0) for f in features if f != "revenue")
    return (-float(row.get("c_revenue") or 0.0), -int(row["users"]), *rest)


def _sign_fixed(pc, n_features: int, j: int) -> list[float]:
    """Column j of the PCA loadings, signed so that its largest-|loading| entry is positive."""
    col = [float(pc[i, j]) for i in range(n_features)]
    big = max(range(n_features), key=lambda i: (abs(round(col[i], 12)), -i))
    sign = -1.0 if col[big] < 0 else 1.0
    return [sign * v for v in col]


def cluster_users(users: DataFrame, days: DataFrame, rng: DateRange, settings: Mapping | None = None) -> ClusterResult:
    """k-means clusters over behavioural features, k by best silhouette in [k_min, k_max].

    Returns the users (all input columns) with `cluster` (int, 0 = highest centroid revenue),
    `cluster_pc1`, `cluster_pc2` (2-D PCA projection of the scaled features) and the
    cluster_profiles table. Tiny or constant data -> one cluster 0, silhouette null.
    Up to `driver_max_users` users the features (a few doubles per user) are clustered on the
    driver with numpy: one Spark job instead of ~100 small ones; above it, Spark MLlib.
    """
    s = _settings(DEFAULT_CLUSTER_SETTINGS, settings)
    features = [f for f in s["features"]]
    unknown = [f for f in features if f not in FEATURES]
    if unknown or len(features) < 2:
        raise ValueError(f"clustering.features: at least two of {list(FEATURES)}, got {features}")
    logs = set(s.get("log_features") or [])
    beh = user_behaviour(users, days, rng)
    model_cols = [f"_m_{f}" for f in features]
    prepared = beh.select(
        *[F.col(c) for c in users.columns],
        *[(F.log1p(F.greatest(F.lit(0.0), _num(f))) if f in logs else _num(f)).alias(m)
          for f, m in zip(features, model_cols)],
        *[F.col(f).cast("double").alias(f"_raw_{f}") for f in features if f not in users.columns],
    )
    limit = int(s.get("driver_max_users", 200_000))
    if limit > 0:
        raw = [F.col(f).cast("double") if f in users.columns else F.col(f"_raw_{f}") for f in features]
        small = (prepared.select("user_id", *model_cols, *[c.alias(f"_r_{f}") for c, f in zip(raw, features)])
                 .limit(limit + 1).toArrow())
        if small.num_rows <= limit:
            return _cluster_on_driver(users, small, features, s)
    return _cluster_with_mllib(users, prepared, features, model_cols, s)


def _column(table, name: str):
    """A numeric Arrow column as float64 numpy (nulls -> NaN)."""
    import numpy as np

    return np.asarray(table.column(name).to_numpy(zero_copy_only=False), dtype=np.float64)


def _kmeans(x, k: int, seed: int, max_iter: int, tol: float = 1e-4):
    """Lloyd's k-means with k-means++ seeding (numpy); (labels, centers). Deterministic for a seed."""
    import numpy as np

    gen = np.random.default_rng(seed)
    n = x.shape[0]
    centers = [x[gen.integers(n)]]
    d2 = ((x - centers[0]) ** 2).sum(axis=1)
    for _ in range(1, k):
        total = d2.sum()
        if total <= 0:
            break
        idx = min(int(np.searchsorted(np.cumsum(d2), gen.random() * total, side="right")), n - 1)
        centers.append(x[idx])
        d2 = np.minimum(d2, ((x - x[idx]) ** 2).sum(axis=1))
    c = np.array(centers)
    xx = (x ** 2).sum(axis=1)[:, None]

    def assign(c):
        return np.argmin(xx - 2 * x @ c.T + (c ** 2).sum(axis=1)[None, :], axis=1)

    for _ in range(max_iter):
        labels = assign(c)
        new = c.copy()
        for j in range(len(c)):
            members = labels == j
            if members.any():  # an empty cluster keeps its centre (as Spark's k-means does)
                new[j] = x[members].mean(axis=0)
        moved = float(((new - c) ** 2).sum(axis=1).max())
        c = new
        if moved <= tol * tol:
            break
    return assign(c), c


def _silhouette(x, labels, k: int) -> float | None:
    """Mean silhouette with squared Euclidean distance, as Spark's ClusteringEvaluator computes it
    (per-cluster sums: O(n*k)); None with fewer than two non-empty clusters. A singleton scores 0."""
    import numpy as np

    counts = np.bincount(labels, minlength=k).astype(np.float64)
    if (counts > 0).sum() < 2:
        return None
    sums = np.zeros((k, x.shape[1]))
    np.add.at(sums, labels, x)
    xx = (x ** 2).sum(axis=1)
    psi = np.bincount(labels, weights=xx, minlength=k)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_d = (counts[None, :] * xx[:, None] - 2 * x @ sums.T + psi[None, :]) / counts[None, :]
    mean_d = np.where(counts[None, :] > 0, np.maximum(mean_d, 0.0), np.inf)
    rows = np.arange(len(labels))
    own_n = counts[labels]
    a = np.where(own_n > 1, mean_d[rows, labels] * own_n / np.maximum(own_n - 1, 1), 0.0)
    others = mean_d.copy()
    others[rows, labels] = np.inf
    b = others.min(axis=1)
    top = np.maximum(a, b)
    with np.errstate(divide="ignore", invalid="ignore"):
        sil = np.where((own_n > 1) & (top > 0), (b - a) / top, 0.0)
    return float(sil.mean())


def _cluster_on_driver(users: DataFrame, table, features: list[str], s: Mapping) -> ClusterResult:
    """cluster_users for up to `driver_max_users` users: the collected features clustered with numpy."""
    import numpy as np
    import pyarrow as pa

    spark = users.sparkSession
    clock, timings = time.perf_counter(), {}
    k_min, k_max = max(2, int(s["k_min"])), int(s["k_max"])
    seed, max_iter = int(s["seed"]), int(s["max_iter"])
    ids = np.asarray(table.column("user_id").to_pylist(), dtype=object)
    order = np.argsort(ids.astype(str), kind="stable")  # same data, same row order, same clusters
    ids = ids[order]
    m = np.column_stack([_column(table, f"_m_{f}")[order] for f in features]) if len(ids) else np.zeros((0, len(features)))
    raw = {f: _column(table, f"_r_{f}")[order] for f in features}
    n_users = len(ids)
    n_distinct = len(np.unique(m, axis=0)) if n_users else 0
    timings["features"] = round(time.perf_counter() - clock, 3)

    # Standardised like Spark's StandardScaler(withMean, withStd): sample std, 0 where it is 0.
    if n_users:
        std = m.std(axis=0, ddof=1) if n_users > 1 else np.zeros(len(features))
        x = np.where(std > 0, (m - m.mean(axis=0)) / np.where(std > 0, std, 1.0), 0.0)
    else:
        x = m
    best = None  # (silhouette, k, labels, centers)
    for k in (range(k_min, min(k_max, n_distinct - 1) + 1) if n_distinct > k_min else ()):
        labels, centers = _kmeans(x, k, seed, max_iter)
        sil = _silhouette(x, labels, k)
        if sil is not None and not math.isnan(sil) and (best is None or sil > best[0] + 1e-12):
            best = (sil, k, labels, centers)
    if best is None:
        silhouette, k, labels, centers_z = None, 1, np.zeros(n_users, dtype=int), None
    else:
        silhouette, k, labels, centers = best
        centers_z = [list(map(float, c)) for c in centers]
    timings["kmeans"] = round(time.perf_counter() - clock, 3)

    rows = []
    for c in sorted(set(labels.tolist())):
        members = labels == c
        means = {}
        for f in features:
            vals = raw[f][members]
            vals = vals[~np.isnan(vals)]
            means[f"c_{f}"] = float(vals.mean()) if len(vals) else None
        rows.append({"_pred": c, "users": int(members.sum()), **means})
    new_id, profiles = _profiles(spark, rows, centers_z, silhouette, features)

    if n_distinct >= 2:
        w, v = np.linalg.eigh(np.cov(x, rowvar=False))
        pc = v[:, np.argsort(-w, kind="stable")[:2]]
        proj = np.column_stack([x @ np.array(_sign_fixed(pc, len(features), j)) for j in range(2)])
    else:
        proj = np.zeros((n_users, 2))
    published = np.array([new_id.get(c, 0) for c in range(max(new_id) + 1)] if new_id else [0], dtype=np.int32)
    assigned = spark.createDataFrame(pa.table({
        "user_id": pa.array(ids.tolist(), pa.string()), "cluster": pa.array(published[labels], pa.int32()),
        "cluster_pc1": pa.array(proj[:, 0], pa.float64()), "cluster_pc2": pa.array(proj[:, 1], pa.float64())}))
    out_users = users.join(assigned, "user_id", "left").select(
        *users.columns, F.coalesce("cluster", F.lit(0)).alias("cluster"),
        F.coalesce("cluster_pc1", F.lit(0.0)).alias("cluster_pc1"), F.coalesce("cluster_pc2", F.lit(0.0)).alias("cluster_pc2"))
    timings["assign"] = round(time.perf_counter() - clock, 3)
    log.info("clustering on the driver: %d users, k=%d, silhouette=%s, seconds=%s", n_users, k, silhouette, timings)
    return ClusterResult(out_users, profiles, k, silhouette, None, timings)


def _profiles(spark, rows: list[dict], centers_z, silhouette, features: list[str]):
    """({k-means cluster id -> published id}, cluster_profiles) from per-cluster sizes and raw means."""
    ordered = sorted(rows, key=lambda r: (_order_key(r, features), r["_pred"]))
    new_id = {r["_pred"]: i for i, r in enumerate(ordered)}
    if centers_z is None:
        labels = [SINGLE_CLUSTER_LABEL] * len(ordered)
    else:
        labels = label_clusters([dict(zip(features, centers_z[r["_pred"]])) for r in ordered])
    total = sum(r["users"] for r in ordered)
    prof_schema = "cluster int, label string, users long, share double, silhouette double, " + ", ".join(
        f"centroid_{f} double" for f in features)
    prof_rows = [
        (new_id[r["_pred"]], labels[i], int(r["users"]), (r["users"] / total) if total else None, silhouette,
         *[None if r[f"c_{f}"] is None else float(r[f"c_{f}"]) for f in features])
        for i, r in enumerate(ordered)
    ]
    return new_id, local_frame(spark, prof_rows, prof_schema).orderBy("cluster")


# The caller's local properties a k-means fit runs with: its job group (cancelling the group cancels
# the fits), description, interrupt flag and scheduler pool.
JOB_PROPERTIES = ("spark.jobGroup.id", "spark.job.description", "spark.job.interruptOnCancel", "spark.scheduler.pool")


def _with_job_properties(spark: SparkSession, fn):
    """`fn` for a worker thread: run with the caller's job properties (read now), cleared when it ends.

    Each call sets its own values on its thread's local properties and removes them afterwards, so a
    pooled thread keeps nothing of a fit. (pyspark's `inheritable_thread_target` instead installs one
    clone of all the caller's properties on every worker, shared between them and left in place.)
    """
    try:
        sc = spark.sparkContext
    except Exception:  # noqa: BLE001 - Spark Connect: no SparkContext, no local properties to carry
        return fn
    values = {k: v for k in JOB_PROPERTIES if (v := sc.getLocalProperty(k)) is not None}

    def run(arg):
        for key, value in values.items():
            sc.setLocalProperty(key, value)
        try:
            return fn(arg)
        finally:
            for key in values:
                sc.setLocalProperty(key, None)  # null removes the key

    return run


def _cluster_with_mllib(users: DataFrame, prepared: DataFrame, features: list[str], model_cols: list[str],
                        s: Mapping) -> ClusterResult:
    """cluster_users on Spark MLlib (scaler, k-means fits in parallel, silhouettes, PCA)."""
    k_min, k_max = max(2, int(s["k_min"])), int(s["k_max"])
    seed, max_iter = int(s["seed"]), int(s["max_iter"])
    spark = users.sparkSession
    clock, timings = time.perf_counter(), {}

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 3)
        clock = now

    raw = lambda f: F.col(f).cast("double") if f in users.columns else F.col(f"_raw_{f}")  # noqa: E731
    assembled = VectorAssembler(inputCols=model_cols, outputCol="_vec", handleInvalid="keep").transform(prepared)
    # Deterministic row order (hash partitions by user, sorted inside) => same data, same clusters.
    # k-means is latency-bound on small data: one partition below `single_partition_users`.
    one = assembled.repartition(1).sortWithinPartitions("user_id").cache()
    # One pass materialises the cache and counts users and distinct feature points.
    counts = one.agg(F.count(F.lit(1)).alias("n"), F.countDistinct(*model_cols).alias("d")).collect()[0]
    n_users, n_distinct = int(counts["n"]), int(counts["d"])
    if n_users > int(s.get("single_partition_users", 200_000)):
        parts = max(1, spark.sparkContext.defaultParallelism)
        assembled = one.repartition(parts, "user_id").sortWithinPartitions("user_id").cache()
        assembled.count()
        one.unpersist()
    else:
        assembled = one
    lap("features")

    if n_users:
        scaler = StandardScaler(inputCol="_vec", outputCol="_features", withMean=True, withStd=True).fit(assembled)
        data = scaler.transform(assembled)
    else:
        data = assembled.withColumn("_features", F.col("_vec"))
    # The scaled vectors alone, cached, for the k-means fits, silhouettes and the PCA.
    vectors = data.select("_features").cache()

    lap("scaler")
    best = None  # (silhouette, k, model)
    candidates = list(range(k_min, min(k_max, n_distinct - 1) + 1)) if n_distinct > k_min else []
    if candidates:
        evaluator = ClusteringEvaluator(featuresCol="_features", predictionCol="_pred", metricName="silhouette")

        def fit(k: int):
            model = KMeans(k=k, seed=seed, maxIter=max_iter, solver="block",
                           featuresCol="_features", predictionCol="_pred").fit(vectors)
            try:
                sil = float(evaluator.evaluate(model.transform(vectors)))
            except Exception:  # fewer than two non-empty clusters: not a candidate
                return k, None, model
            return k, (None if math.isnan(sil) else sil), model

        # The k candidates are independent and each deterministic: fit them concurrently (the
        # per-iteration job latency dominates on small data), then pick in k order.
        with ThreadPoolExecutor(max_workers=min(len(candidates), int(s.get("parallel_fits", 4)))) as pool:
            results = list(pool.map(_with_job_properties(spark, fit), candidates))
        for k, sil, model in results:
            if sil is not None and (best is None or sil > best[0] + 1e-12):
                best = (sil, k, model)

    lap("kmeans")
    if best is None:
        clustered = data.withColumn("_pred", F.lit(0))
        silhouette, k, centers_z = None, 1, None
    else:
        silhouette, k, model = best
        clustered = model.transform(data)
        centers_z = [list(map(float, c)) for c in model.clusterCenters()]

    # Centroids in original units (mean of each raw feature) and sizes: k small rows.
    stats = clustered.groupBy("_pred").agg(
        F.count(F.lit(1)).alias("users"), *[F.avg(raw(f)).alias(f"c_{f}") for f in features]
    ).collect()
    rows = [r.asDict() for r in stats]
    lap("profiles")
    new_id, profiles = _profiles(spark, rows, centers_z, silhouette, features)

    mapping = F.create_map(*[x for old, new in sorted(new_id.items()) for x in (F.lit(old), F.lit(new))]) if new_id else None
    cluster_col = (mapping[F.col("_pred")] if mapping is not None else F.lit(0)).cast("int")

    # 2-D projection of the scaled features (deterministic sign), 0 when there is nothing to project.
    if n_distinct >= 2:
        pca = PCA(k=2, inputCol="_features", outputCol="_pca").fit(vectors)
        arr = vector_to_array(F.col("_features"))
        pcs = []
        for j in range(2):
            w = _sign_fixed(pca.pc, len(features), j)
            pcs.append(sum((arr[i] * F.lit(w[i]) for i in range(len(features))), F.lit(0.0)))
    else:
        pcs = [F.lit(0.0), F.lit(0.0)]

    vectors.unpersist()
    lap("pca")
    out_users = clustered.select(
        *users.columns, cluster_col.alias("cluster"),
        pcs[0].cast("double").alias("cluster_pc1"), pcs[1].cast("double").alias("cluster_pc2"),
    )

    log.info("clustering: %d users, k=%d, silhouette=%s, seconds=%s", n_users, k, silhouette, timings)
    return ClusterResult(out_users, profiles, k, silhouette, assembled, timings)




def segment_and_cluster(users: DataFrame, days: DataFrame, rng: DateRange,
                        segment_settings: Mapping | None = None,
                        cluster_settings: Mapping | None = None) -> tuple[DataFrame, DataFrame, DataFrame]:
    """(users + segment, cluster, cluster_pc1, cluster_pc2; segment_summary; cluster_profiles)."""
    # Materialised once: the clustering's feature fetch and its labelled users both read it (the
    # per-user behaviour over all user-days, the quantile cut and its broadcast are computed once).
    segmented = assign_segments(users, days, rng, segment_settings).localCheckpoint(eager=True)
    result = cluster_users(segmented, days, rng, cluster_settings)
    # Materialised with its lineage cut, so the clustering's cached feature frame can be freed and
    # later plans stay small (the k-means pipeline behind these rows is long).
    clustered = result.users.localCheckpoint(eager=True)
    result.unpersist()
    return clustered, segment_summary(clustered), result.profiles
