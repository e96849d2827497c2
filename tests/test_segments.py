"""Rule-based segments and k-means clusters (docs/spec/metrics.md "Segments" and "Clusters")."""

from __future__ import annotations

import datetime as dt

import pytest
from chispa import assert_approx_df_equality, assert_df_equality

from lakehouse.transforms.common import DateRange
from lakehouse.transforms.segments import SINGLE_CLUSTER_LABEL, assign_segments, cluster_users, label_clusters, segment_summary

D = dt.date
USERS_SCHEMA = "user_id string, first_seen_date date, last_active_date date, active_days long, revenue double"
DAYS_SCHEMA = "user_id string, activity_date date, sessions long, points_earned long"


def _frames(spark, active: dict, first_seen: dict, revenue: dict, sessions: dict | None = None, points: dict | None = None):
    """users and days for the segment/cluster functions from per-user active dates (hand-written)."""
    sessions, points = sessions or {}, points or {}
    days = [(u, d, sessions.get(u, 1) if i == 0 else 0, points.get(u, 0) if i == 0 else 0)
            for u, ds in active.items() for i, d in enumerate(ds)]
    users = [(u, f, max(active[u]) if active.get(u) else None, len(active.get(u, [])), float(revenue.get(u, 0.0)))
             for u, f in first_seen.items()]
    return spark.createDataFrame(users, USERS_SCHEMA), spark.createDataFrame(days, DAYS_SCHEMA)


# Range end E = 2024-03-31: new >= 03-25, dormant: last active < 03-02, at_risk: < 03-18, regular: >= 4 days since 03-02.
RNG = DateRange(D(2024, 1, 1), D(2024, 3, 31))
M = lambda day: D(2024, 3, day)  # noqa: E731
ACTIVE = {
    "n1": [M(28)],
    "d1": [D(2024, 1, 1), D(2024, 2, 20)],
    "h1": [D(2024, 1, 5), M(10)],
    "r1": [D(2024, 1, 2), M(5), M(10), M(20), M(25), M(30)],
    "a1": [D(2024, 1, 3), M(15)],
    "o1": [D(2024, 1, 4), M(20), M(29)],
}
FIRST_SEEN = {
    "n1": M(28),
    "n2": M(30),              # profile only, registered recently
    "p1": D(2024, 1, 10),     # profile only, registered long ago
    "p2": None,               # profile with no registration date and no events
    "d1": D(2024, 1, 1), "h1": D(2024, 1, 5), "r1": D(2024, 1, 2), "a1": D(2024, 1, 3), "o1": D(2024, 1, 4),
}
# Buyers' revenue 10, 20, 30, 1000, 2000: exact 90th percentile = 1000 + 0.6 * 1000 = 1600.
REVENUE = {"d1": 1000.0, "h1": 2000.0, "r1": 10.0, "a1": 20.0, "o1": 30.0}


def test_segments_cover_every_user_exactly_once_in_rule_order(spark):
    users, days = _frames(spark, ACTIVE, FIRST_SEEN, REVENUE)
    got = assign_segments(users, days, RNG).select("user_id", "segment").orderBy("user_id")
    expected = spark.createDataFrame([
        ("a1", "at_risk"),      # last active 03-15: nothing in the last 14 days
        ("d1", "dormant"),      # dormant comes before high_value
        ("h1", "high_value"),   # 2000 >= 1600, though at risk by recency
        ("n1", "new"),
        ("n2", "new"),          # new by registration, never active
        ("o1", "occasional"),   # 2 active days in the last 30
        ("p1", "dormant"),      # never active
        ("p2", "dormant"),      # nothing known
        ("r1", "regular"),      # 5 active days in the last 30
    ], "user_id string, segment string")
    assert_df_equality(got, expected, ignore_nullable=True)

    # An absolute threshold widens high_value: "top decile OR revenue >= threshold".
    wide = assign_segments(users, days, RNG, {"high_value_min_revenue": 25}).filter("segment = 'high_value'")
    assert sorted(r.user_id for r in wide.select("user_id").collect()) == ["h1", "o1"]


def test_segment_summary_lists_every_segment_with_shares(spark):
    users, days = _frames(spark, ACTIVE, FIRST_SEEN, REVENUE)
    got = segment_summary(assign_segments(users, days, RNG))
    expected = spark.createDataFrame([
        ("new", 2, 2 / 9, 0.0, 0.5),
        ("dormant", 3, 3 / 9, 1000.0 / 3, 2 / 3),
        ("high_value", 1, 1 / 9, 2000.0, 2.0),
        ("at_risk", 1, 1 / 9, 20.0, 2.0),
        ("regular", 1, 1 / 9, 10.0, 6.0),
        ("occasional", 1, 1 / 9, 30.0, 3.0),
    ], "segment string, users long, share double, avg_revenue double, avg_active_days double")
    assert_approx_df_equality(got, expected, 1e-9, ignore_nullable=True)


def test_cluster_labels_follow_from_centroids():
    centers = [
        {"active_days": -1.0, "sessions": -1.0, "revenue": -0.5, "points_earned": -0.5, "recency_days": 1.5, "tenure_days": 0.5},
        {"active_days": 1.2, "sessions": 1.1, "revenue": 1.5, "points_earned": 0.2, "recency_days": -0.8, "tenure_days": 0.4},
        {"active_days": -0.5, "sessions": -0.5, "revenue": -0.5, "points_earned": -0.4, "recency_days": -0.7, "tenure_days": -1.6},
        {"active_days": 0.3, "sessions": 0.4, "revenue": -0.4, "points_earned": 2.0, "recency_days": -0.5, "tenure_days": 0.2},
    ]
    assert label_clusters(centers) == ["dormant", "frequent buyers", "new users", "loyalty fans"]
    # Clusters that fit no archetype are described by their most deviating features; labels stay unique.
    many = label_clusters([{"revenue": float(i) - 3.0, "sessions": -0.5} for i in range(7)])
    assert many == [
        "casual browsers",                       # tie on score with clusters 1-2: lower id wins
        "low revenue, low sessions (cluster 1)", "low revenue, low sessions (cluster 2)",
        "low sessions",
        "high revenue, low sessions (cluster 4)", "high revenue, low sessions (cluster 5)",
        "frequent buyers",                       # highest revenue z-score
    ]


# Three obvious behaviours (4 users each): big buyers, old dormant users, brand-new light users.
def _three_groups(spark):
    active, first, revenue, sessions, points = {}, {}, {}, {}, {}
    for i in range(4):
        b, d, n = f"b{i}", f"d{i}", f"n{i}"
        active[b] = [D(2024, 1, 10 + j) for j in range(12 + i)] + [M(30 - i % 2)]
        first[b], revenue[b], sessions[b], points[b] = D(2024, 1, 10), 900.0 + 50 * i, 40 + i, 300 + 10 * i
        active[d] = [D(2024, 1, 2 + i)]
        first[d], sessions[d] = D(2024, 1, 2 + i), 1
        active[n] = [M(27 + i % 2), M(29)]
        first[n], sessions[n] = M(27 + i % 2), 2 + i % 2
    return _frames(spark, active, first, revenue, sessions, points)


SETTINGS = {"k_min": 2, "k_max": 4, "seed": 7, "max_iter": 10}


@pytest.fixture(scope="module")
def clustered(spark):
    users, days = _three_groups(spark)
    first = cluster_users(users, days, RNG, SETTINGS)
    second = cluster_users(users, days, RNG, SETTINGS)
    return first, second


def test_clusters_are_deterministic_and_ordered_by_centroid_revenue(clustered):
    first, second = clustered
    a = sorted((r.user_id, r.cluster, round(r.cluster_pc1, 9), round(r.cluster_pc2, 9)) for r in first.users.collect())
    b = sorted((r.user_id, r.cluster, round(r.cluster_pc1, 9), round(r.cluster_pc2, 9)) for r in second.users.collect())
    assert a == b                                   # same data, same clusters and projection
    assert first.k == 3
    by_user = {u: c for u, c, _, _ in a}
    # 0 = highest centroid revenue; the two zero-revenue clusters (same size) by active days desc.
    assert {by_user[f"b{i}"] for i in range(4)} == {0}
    assert {by_user[f"n{i}"] for i in range(4)} == {1}
    assert {by_user[f"d{i}"] for i in range(4)} == {2}


def test_cluster_profiles_label_each_cluster_from_its_centroid(clustered):
    first, _ = clustered
    prof = [r.asDict() for r in first.profiles.orderBy("cluster").collect()]
    assert [p["label"] for p in prof] == ["frequent buyers", "new users", "dormant"]
    assert [p["users"] for p in prof] == [4, 4, 4] and [p["share"] for p in prof] == [1 / 3] * 3
    assert all(0 < p["silhouette"] <= 1 and p["silhouette"] == first.silhouette for p in prof)
    assert prof[0]["centroid_revenue"] == pytest.approx(975.0)  # original units: mean revenue of the b users
    assert list(prof[0])[:5] == ["cluster", "label", "users", "share", "silhouette"]
    assert [c for c in prof[0] if c.startswith("centroid_")] == [
        "centroid_active_days", "centroid_sessions", "centroid_revenue", "centroid_points_earned",
        "centroid_recency_days", "centroid_tenure_days"]


def test_driver_and_mllib_paths_give_the_same_clusters_silhouette_and_profiles(spark, clustered):
    # Up to driver_max_users users cluster on the driver (numpy); 0 forces Spark MLlib. Both find the
    # three groups, and the driver's silhouette formula is Spark ClusteringEvaluator's.
    first, _ = clustered
    users, days = _three_groups(spark)
    mllib = cluster_users(users, days, RNG, {**SETTINGS, "driver_max_users": 0})
    try:
        assert mllib.k == first.k == 3
        assert mllib.silhouette == pytest.approx(first.silhouette, abs=1e-9)
        assert sorted((r.user_id, r.cluster) for r in mllib.users.collect()) == \
            sorted((r.user_id, r.cluster) for r in first.users.collect())
        assert_approx_df_equality(mllib.profiles, first.profiles, 1e-9)
        # The 2-D projection is the same up to floating error.
        a = {r.user_id: (r.cluster_pc1, r.cluster_pc2) for r in first.users.collect()}
        for r in mllib.users.collect():
            assert (r.cluster_pc1, r.cluster_pc2) == pytest.approx(a[r.user_id], abs=1e-9)
    finally:
        mllib.unpersist()


def test_tiny_or_constant_data_gives_one_cluster_without_silhouette(spark):
    # Two users (< k_min + 1 distinct points) ...
    users, days = _frames(spark, {"x": [M(1)], "y": [M(2), M(3)]}, {"x": M(1), "y": M(2)}, {"y": 5.0})
    tiny = cluster_users(users, days, RNG, SETTINGS)
    # ... and five identical users.
    same = {f"s{i}": [M(10)] for i in range(5)}
    users2, days2 = _frames(spark, same, {u: M(10) for u in same}, {})
    const = cluster_users(users2, days2, RNG, SETTINGS)
    for res, n in ((tiny, 2), (const, 5)):
        assert res.k == 1 and res.silhouette is None
        assert {r.cluster for r in res.users.select("cluster").collect()} == {0}
        (p,) = res.profiles.collect()
        assert (p.cluster, p.label, p.users, p.share, p.silhouette) == (0, SINGLE_CLUSTER_LABEL, n, 1.0, None)
    assert {(r.cluster_pc1, r.cluster_pc2) for r in const.users.collect()} == {(0.0, 0.0)}


def test_parallel_fits_run_in_the_callers_job_group_and_leave_their_thread_clean(spark):
    # The k-means fits run on pool threads: each sees the caller's job group and description while
    # it runs (cancelling the group cancels it), and its thread keeps none of them afterwards.
    from concurrent.futures import ThreadPoolExecutor

    from lakehouse.transforms.segments import JOB_PROPERTIES, _with_job_properties

    sc = spark.sparkContext
    seen = lambda _=None: tuple(sc.getLocalProperty(k) for k in JOB_PROPERTIES[:2])  # noqa: E731
    sc.setJobGroup("fits-group", "clustering fits")
    try:
        wrapped = _with_job_properties(spark, seen)
    finally:
        sc.setLocalProperty("spark.jobGroup.id", None)
        sc.setLocalProperty("spark.job.description", None)
    with ThreadPoolExecutor(max_workers=1) as pool:  # one thread: the second call reuses it
        during = pool.submit(wrapped, 3).result()
        after = pool.submit(seen).result()
    assert during == ("fits-group", "clustering fits")
    assert after == (None, None), "the worker thread kept the fit's job properties"
