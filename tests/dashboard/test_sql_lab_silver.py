"""SQL Lab over silver.events and silver.sessions: scanned in place, without personal data, fresh per version."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.dataset as pds
import pytest

from conftest import START
from dashboard import data
from dashboard import sql_lab as engine
from dashboard.config import configure
from fake_lake import build_fake_lake, silver_frames, write_silver


@pytest.fixture(scope="module")
def silver_lake(tmp_path_factory):
    lk = build_fake_lake(tmp_path_factory.mktemp("silverlake"), n_users=40, n_days=30, start=START, seed=11)
    frames = silver_frames(lk.frames["users"].user_id, START, 30, n_events=600)
    write_silver(lk.root, frames)
    return lk, frames


@pytest.fixture()
def lake(silver_lake):
    lk, frames = silver_lake
    configure(lk.root, users={})
    data.clear_caches()
    return lk, frames


def q(sql: str):
    return engine.run_query(sql, data.sql_tables()).table


def test_silver_events_and_sessions_count_what_was_written(lake):
    _, frames = lake
    assert q("SELECT count(*) AS n FROM silver.events").to_pylist() == [{"n": len(frames["events"])}]
    assert q("SELECT count(*) AS n FROM silver.sessions").to_pylist() == [{"n": len(frames["sessions"])}]
    purchases = frames["events"][frames["events"].event == "purchase"]
    t = q("SELECT count(*) AS n, round(sum(amount), 2) AS amount FROM silver.events WHERE event = 'purchase'")
    assert t.column("n")[0].as_py() == len(purchases)
    assert t.column("amount")[0].as_py() == pytest.approx(round(purchases.amount.sum(), 2))


def test_silver_is_scanned_in_place_not_loaded(lake):
    tables = data.sql_tables()
    assert isinstance(tables["silver.events"], pds.Dataset) and isinstance(tables["silver.sessions"], pds.Dataset)
    assert isinstance(tables["gold.users"], pa.Table)
    con = engine.connect(tables)
    try:
        plan = "\n".join(r[1] for r in con.execute(
            "EXPLAIN SELECT count(*) FROM silver.events WHERE event = 'purchase'").fetchall())
    finally:
        con.close()
    assert "ARROW_SCAN" in plan and "Filters" in plan and "purchase" in plan  # filter pushed into the scan


def test_only_the_offered_columns_are_there(lake):
    assert q("SELECT * FROM silver.events LIMIT 1").column_names == list(data.SQL_SILVER_COLUMNS["events"])
    assert q("SELECT * FROM silver.sessions LIMIT 1").column_names == list(data.SQL_SILVER_COLUMNS["sessions"])
    for personal in ("city", "referrer", "properties", "source_file", "batch_id", "ingested_at"):
        assert personal not in data.SQL_SILVER_COLUMNS["events"]


@pytest.mark.parametrize("sql, says", [
    ("SELECT city, count(*) FROM silver.events GROUP BY 1", "Column 'city' is not offered"),
    ("SELECT e.referrer FROM silver.events e", "Column 'referrer' is not offered"),
    ("SELECT properties FROM silver.events WHERE event = 'purchase'", "Column 'properties' is not offered"),
    ("SELECT source_file FROM silver.events", "Column 'source_file' is not offered"),
    ("SELECT email_hash FROM silver.users", "silver.users is not offered in SQL Lab: profiles with personal data"),
    ("SELECT * FROM silver.users", "silver.users is not offered"),
    ("SELECT count(*) FROM events e JOIN SILVER.Users u USING (user_id)", "silver.users is not offered"),
    ("SELECT * FROM silver.quarantine", "silver.quarantine is not offered"),
    ("SELECT * FROM bronze.events", "bronze.events is not offered"),
    ("SELECT * FROM ops.erasures", "ops.erasures is not offered"),
])
def test_personal_data_is_refused_with_a_reason(lake, sql, says):
    with pytest.raises(engine.QueryRefused, match=says):
        q(sql)


def test_the_registered_scan_has_no_personal_columns_either(lake):
    with pytest.raises(engine.QueryRefused, match="'city' is not offered"):
        q("SELECT city FROM _scan_silver_events")


def test_silver_joins_gold(lake):
    lk, frames = lake
    t = q("SELECT g.segment, count(*) AS events, count(DISTINCT e.user_id) AS users "
          "FROM silver.events e JOIN gold.users g USING (user_id) GROUP BY ALL ORDER BY 1")
    ev = frames["events"].merge(lk.frames["users"][["user_id", "segment"]], on="user_id")
    want = ev.groupby("segment").agg(events=("event", "size"), users=("user_id", "nunique")).reset_index()
    assert t.to_pylist() == want.to_dict("records")
    t = q("SELECT count(*) AS n FROM silver.sessions s JOIN users u USING (user_id) WHERE s.events >= 1")
    assert t.column("n")[0].as_py() == len(frames["sessions"])


def test_timestamps_are_utc_and_decimals_come_through(lake):
    _, frames = lake
    lo = q("SELECT min(ts) AS lo FROM silver.events").column("lo")[0].as_py()
    assert lo == frames["events"].ts.min().to_pydatetime() and lo.utcoffset().total_seconds() == 0
    total = q("SELECT sum(duration_s) AS total FROM silver.sessions").column("total")[0].as_py()
    assert float(total) == pytest.approx(frames["sessions"].duration_s.sum(), abs=1e-3)


def test_a_new_silver_version_is_seen_without_a_restart(tmp_path):
    lk = build_fake_lake(tmp_path / "lake", n_users=12, n_days=10, start=START, seed=2, with_runs=False)
    frames = silver_frames(lk.frames["users"].user_id, START, 10, n_events=80)
    write_silver(lk.root, frames)
    configure(lk.root, users={})
    data.clear_caches()
    gone = frames["events"].user_id.iloc[0]
    sql = f"SELECT count(*) AS n FROM silver.events WHERE user_id = '{gone}'"
    assert q(sql).column("n")[0].as_py() == (frames["events"].user_id == gone).sum() > 0
    before = q("SELECT count(*) AS n FROM silver.sessions").column("n")[0].as_py()
    # what `lakehouse forget` leaves: a new version of silver without the user
    kept = {k: v[v.user_id != gone] for k, v in frames.items()}
    write_silver(lk.root, kept)
    assert q(sql).column("n")[0].as_py() == 0
    assert q("SELECT count(*) AS n FROM silver.events").column("n")[0].as_py() == len(kept["events"])
    assert q("SELECT count(*) AS n FROM silver.sessions").column("n")[0].as_py() == len(kept["sessions"]) < before


def test_the_schema_browser_lists_silver_without_personal_columns(lake):
    import sys

    from dashboard.app import create_app

    lk, frames = lake
    create_app(lk.root, users={}, warm=False)
    data.clear_caches()
    text = str(sys.modules["pages.sql_lab"]._schema_browser())
    assert "silver.events" in text and "silver.sessions" in text and "gold.users" in text
    assert f"{len(frames['events']):,}" in text  # row count from the Delta log
    assert "'city'" not in text and "'email_hash'" not in text and "silver.users'" not in text


def test_every_example_query_runs(lake):
    for name, sql in engine.EXAMPLES.items():
        t = q(sql)
        assert t.num_rows > 0, name
