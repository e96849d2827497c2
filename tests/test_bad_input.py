"""Nothing lost: every kind of bad line of events.md §3, and broken files, mixed with good lines."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from deltalake import DeltaTable

from lakehouse import pipeline

pytestmark = pytest.mark.e2e


def good(i: int, **over) -> str:
    e = {"event_id": f"g{i}", "event": "page_view", "ts": "2026-01-05T10:00:00Z", "user_id": f"u{i % 7}",
         "properties": {"page": "/p"}, "context": {"device": "web", "country": "fr"}}
    e.update(over)
    return json.dumps(e)


@pytest.fixture(scope="module")
def bad_lake(spark, cfg, tmp_path_factory):
    root = tmp_path_factory.mktemp("bad")
    ev = root / "landing" / "events"
    ev.mkdir(parents=True)
    good_lines = [good(i) for i in range(20)]
    bad_lines = {
        "not_json": "{this is not json",
        "not_an_object": "[1,2,3]",
        "missing_event_id": json.dumps({"event": "x", "ts": "2026-01-05T10:00:00Z", "user_id": "u"}),
        "wrong_type_user_id": good(900, user_id=42),
        "bad_timestamp": good(901, ts="05/01/2026"),
        "future_timestamp": good(902, ts="2099-01-01T00:00:00Z"),
        "negative_amount": good(903, event="purchase", properties={"amount": -1, "payment_status": "success"}),
        "non_positive_points": good(904, event="points_earned", properties={"points": -3}),
        "empty_line": "",
    }
    mixed = good_lines[:10] + list(bad_lines.values()) + [good_lines[0]]            # plus a duplicate
    (ev / "mixed.jsonl").write_text("\n".join(mixed) + "\n", encoding="utf-8")
    (ev / "crlf_bom.jsonl").write_bytes(("\ufeff" + "\r\n".join(good_lines[10:14]) + "\r\n").encode("utf-8"))
    (ev / "extra.jsonl").write_text(good(14, extra={"a": 1}) + "\n" + good(15, event="brand_new_event") + "\n")
    (ev / "huge_line.jsonl").write_text(good(16) + "\n" + json.dumps({"event_id": "big", "pad": "x" * 5_000_000}) + "\n")
    (ev / "empty.jsonl").write_text("")
    (ev / "binary.jsonl").write_bytes(bytes(range(256)) * 4 + b"\n\xff\xfe\xfa\n")
    (ev / "latin1.jsonl").write_bytes(good(17, user_id="caf\xe9").encode("latin-1") + b"\n")
    whole = gzip.compress(("\n".join(good_lines[18:20] + [good(i) for i in range(1000, 3000)]) + "\n").encode())
    (ev / "truncated.jsonl.gz").write_bytes(whole[: len(whole) // 2])
    (ev / "fine.jsonl.gz").write_bytes(gzip.compress((good(300) + "\n").encode()))
    result = pipeline.run(spark, cfg, str(root / "landing"), str(root / "lake"), progress=lambda m: None)
    return root / "lake", result, bad_lines


def _table(lake: Path, name: str):
    """A clean table (silver.events, gold) as pandas, read with delta-rs."""
    return DeltaTable(str(lake / name.replace(".", "/"))).to_pandas()


def _raw(spark, lake: Path, name: str):
    """A table holding raw lines (arbitrary bytes): kept in Spark, never converted to Arrow."""
    return spark.read.format("delta").load(str(lake / name.replace(".", "/")))


def test_bad_lines_do_not_stop_the_run(bad_lake):
    _, result, _ = bad_lake
    assert result.status == "success"


def test_lines_read_equal_silver_rows_plus_duplicates_plus_quarantined(bad_lake, spark):
    lake, result, _ = bad_lake
    quarantined = sum(v for k, v in result.quarantined.items() if k.startswith("events:"))
    assert result.lines["events"] == result.rows["silver.events"] + result.duplicates + quarantined
    assert result.duplicates == 1
    bronze = _raw(spark, lake, "bronze.events").count()
    silver = len(_table(lake, "silver.events"))
    q = _raw(spark, lake, "silver.quarantine").count()
    assert bronze == silver + result.duplicates + q


def test_each_bad_line_is_quarantined_with_its_reason_and_raw_text(bad_lake, spark):
    import pyspark.sql.functions as F

    lake, _, bad_lines = bad_lake
    q = _raw(spark, lake, "silver.quarantine")
    for reason, line in bad_lines.items():
        assert q.filter((F.col("reason") == reason) & (F.col("value") == line)).count() == 1, reason
    counts = {r["reason"]: r["count"] for r in q.groupBy("reason").count().collect()}
    assert counts["line_too_long"] == 1
    assert counts["not_utf8"] >= 2          # the binary file and the latin-1 line
    assert counts["unreadable_file"] == 1   # the truncated gzip is accounted for
    files = [r["source_file"] for r in q.filter(F.col("reason") == "unreadable_file").select("source_file").collect()]
    assert files[0].endswith("truncated.jsonl.gz")


def test_every_good_line_arrives(bad_lake):
    lake, _, _ = bad_lake
    ids = set(_table(lake, "silver.events")["event_id"])
    expected = {f"g{i}" for i in range(17)} | {"g300"}
    assert expected <= ids
    assert "g900" not in ids and "big" not in ids
    events = _table(lake, "silver.events").set_index("event_id")
    assert events.loc["g15", "event"] == "brand_new_event"          # unknown names are kept
    assert json.loads(events.loc["g14", "properties"]) == {"page": "/p"}


def test_a_damaged_gzip_after_a_clean_small_batch_still_lands_in_bronze(spark, tmp_path):
    from lakehouse import bronze
    from lakehouse.tables import Lake

    ev = tmp_path / "landing" / "events"
    ev.mkdir(parents=True)
    (ev / "clean.jsonl").write_text(good(1) + "\n")
    lake = Lake(str(tmp_path / "lake"))
    first = bronze.ingest(spark, lake, str(tmp_path / "landing"), small_max_bytes=1 << 40)  # every batch through delta-rs
    assert bronze.text_bytes(str(ev / "clean.jsonl"), (ev / "clean.jsonl").stat().st_size) == len(good(1)) + 1
    whole = gzip.compress(("\n".join(good(i) for i in range(2000)) + "\n").encode())
    (ev / "later.jsonl.gz").write_bytes(whole[: len(whole) // 2])
    # The first batch made the table through delta-rs; the marker line (no file time) still appends.
    second = bronze.ingest(spark, lake, str(tmp_path / "landing"), small_max_bytes=1 << 40)  # every batch through delta-rs
    assert (first.lines["events"], second.batch_id) == (1, first.batch_id + 1)
    markers = lake.read(spark, "bronze.events").filter("file_modified_at IS NULL").collect()
    assert len(markers) == 1 and markers[0]["source_file"].endswith("later.jsonl.gz")


def test_a_gzip_files_text_size_is_read_from_its_trailer(tmp_path):
    from lakehouse.bronze import text_bytes

    text = ("\n".join(good(i) for i in range(500)) + "\n").encode()
    path = tmp_path / "day.jsonl.gz"
    path.write_bytes(gzip.compress(text))
    assert text_bytes(str(path), path.stat().st_size) == len(text)
    assert text_bytes("s3a://bucket/day.jsonl.gz", 100) == 2000  # not local: 20 times its size
    assert text_bytes(str(tmp_path / "day.jsonl"), 123) == 123
