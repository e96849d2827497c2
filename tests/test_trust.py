"""Promises under concurrency: one run per lake; readers always see one committed version."""

from __future__ import annotations

import threading

import pytest
from deltalake import DeltaTable

from lakehouse import pipeline
from lakehouse.generator import generate

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def small_lake(spark, cfg, tmp_path_factory):
    root = tmp_path_factory.mktemp("trust")
    generate(str(root / "landing"), users=80, days=20, seed=3)
    pipeline.run(spark, cfg, str(root / "landing"), str(root / "lake"), progress=lambda m: None)
    return root


def test_a_second_run_on_a_busy_lake_exits_with_a_clear_message(spark, cfg, small_lake):
    with pipeline.lake_lock(str(small_lake / "lake")):
        with pytest.raises(pipeline.LakeBusyError, match="another lakehouse run is using"):
            pipeline.run(spark, cfg, str(small_lake / "landing"), str(small_lake / "lake"), progress=lambda m: None)


def test_readers_see_complete_committed_versions_during_a_rewrite(spark, cfg, small_lake):
    lake = small_lake / "lake"
    path = str(lake / "gold" / "engagement_daily")
    expected = DeltaTable(path).to_pandas().sort_values("activity_date").reset_index(drop=True)
    seen, errors, stop = [], [], threading.Event()

    def reader():
        while not stop.is_set():
            try:
                table = DeltaTable(path)
                df = table.to_pandas().sort_values("activity_date").reset_index(drop=True)
                seen.append((table.version(), len(df), df.equals(expected)))
            except Exception as exc:  # noqa: BLE001 - any failed read breaks the promise
                errors.append(repr(exc))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        pipeline.run(spark, cfg, None, str(lake), only="gold", full_refresh=True, progress=lambda m: None)
    finally:
        stop.set()
        thread.join()
    assert not errors
    assert len(seen) > 3
    versions = {v for v, _, _ in seen}
    assert len(versions) >= 1
    # Every read, before or after the rewrite, is a whole table with the same numbers.
    assert all(n == len(expected) and same for _, n, same in seen)
