"""Health rules (transforms/health.py): what silver quarantined, counted per feed and reason."""

from __future__ import annotations

from lakehouse.transforms.health import quarantine_summary


def test_quarantine_summary_counts_lines_per_feed_and_reason_in_order(spark):
    q = spark.createDataFrame(
        [("events", "bad_json"), ("users", "missing_user_id"), ("events", "bad_json"), ("events", "bad_timestamp")],
        "feed string, reason string",
    )
    got = [tuple(r) for r in quarantine_summary(q).collect()]
    # 2 bad_json lines and 1 bad_timestamp line on events, 1 missing id on users; sorted by feed, reason.
    assert got == [("events", "bad_json", 2), ("events", "bad_timestamp", 1), ("users", "missing_user_id", 1)]
    assert dict(quarantine_summary(q).dtypes)["lines"] == "bigint"
