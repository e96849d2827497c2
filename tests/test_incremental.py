"""Incremental equals rebuild: files landing in 11 small batches, some late and out of order, with
a run after each, give exactly the gold tables of one run over everything."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pytest
from deltalake import DeltaTable

from lakehouse import generator, pipeline
from lakehouse.tables import GOLD, persisted_rdd_ids

pytestmark = [pytest.mark.e2e, pytest.mark.trust]

LATE_DAY = 2  # this day's events file lands last, 16 days after its date


def _batches(src: Path) -> list[list[Path]]:
    """The generated files in 11 landing batches: two days each, one early day held back to the end,
    the profile updates in the middle, a set of stale profile updates after them, and a file with
    only an uninstall (not an activity) dated after the last active date just before the late day."""
    days = sorted((src / "events").rglob("events-*"))
    late = days.pop(LATE_DAY)
    users = sorted((src / "users").iterdir())
    initial = [u for u in users if "initial" in u.name]
    updates = [u for u in users if u not in initial]
    batches = [initial + days[0:2]]
    batches += [days[i:i + 2] for i in range(2, len(days), 2)]
    batches[4] += updates
    batches[7].append(src / "users" / "stale-updates.jsonl")
    batches.append([_inactive_after_the_end(src, days[-1])])
    batches.append([late])
    return batches


def _inactive_after_the_end(src: Path, last_day: Path) -> Path:
    """One app_uninstall (an excluded event) the day after the last generated day: a batch that
    moves no active date (found by the maintenance bench: its rebuilt dates once ran backwards)."""
    day = dt.date.fromisoformat(last_day.parent.name.removeprefix("date=")) + dt.timedelta(days=1)
    target = src / "events" / f"date={day}" / "uninstall.jsonl"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps({"event_id": "late-uninstall-1", "event": "app_uninstall", "ts": f"{day}T08:00:00Z",
                                  "user_id": "u0000001", "context": {"country": "GB", "device": "mobile"}}) + "\n")
    return target


def _stale_updates(src: Path) -> None:
    """Profile updates dated long before anything the lake holds: they must never win."""
    first = [json.loads(line) for line in (src / "users" / "profiles-initial.jsonl").read_text().splitlines()[:5]]
    lines = [json.dumps({**p, "gender": "other", "country": "ZZ", "updated_at": "2001-01-01T00:00:00Z"}) for p in first]
    (src / "users" / "stale-updates.jsonl").write_text("\n".join(lines) + "\n")


def _land(files: list[Path], src: Path, landing: Path) -> None:
    for f in files:
        target = landing / f.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, target)


def _gold(lake: Path, name: str):
    return _table(lake, "gold", name)


def _table(lake: Path, layer: str, name: str):
    table = DeltaTable(str(lake / layer / name)).to_pandas()
    return table.sort_values(list(table.columns)).reset_index(drop=True)


LEFT_BEHIND: list[set] = []  # per incremental run: the persisted RDDs it left in the session


@pytest.fixture(scope="module")
def lakes(spark, cfg, tmp_path_factory):
    root = tmp_path_factory.mktemp("incremental")
    src = root / "generated"
    generator.generate(str(src), users=60, days=19, seed=11)
    _stale_updates(src)
    batches = _batches(src)
    assert len(batches) == 11
    incremental, landing = root / "incremental", root / "landing"
    summaries, before_late, left_behind = [], None, LEFT_BEHIND
    for i, files in enumerate(batches):
        if files is batches[-1]:
            before_late = _gold(incremental, "engagement_daily")
        _land(files, src, landing)
        # Both ways of writing an incremental table: odd runs replace only the rebuilt rows of every
        # table (as large tables do), even runs rewrite small tables whole with the kept rows.
        run_cfg = {**cfg, "gold": {"replace_where_min_rows": 0 if i % 2 else 10**12}}
        before = persisted_rdd_ids(spark)
        summaries.append(pipeline.run(spark, run_cfg, str(landing), str(incremental), progress=lambda _: None))
        left_behind.append(persisted_rdd_ids(spark) - before)
    rebuild = root / "rebuild"
    pipeline.run(spark, cfg, str(landing), str(rebuild), progress=lambda _: None)
    return incremental, rebuild, summaries, before_late


def test_eleven_incremental_batches_give_the_gold_tables_of_one_rebuild(lakes):
    incremental, rebuild, _, _ = lakes
    for name in GOLD:
        inc, full = _gold(incremental, name), _gold(rebuild, name)
        assert list(inc.columns) == list(full.columns), name
        assert inc.equals(full), f"gold.{name} differs between 11 incremental runs and one rebuild"


def test_silver_sessions_updated_batch_by_batch_equal_one_rebuild(lakes):
    """Each batch cut again only the sessions it could reach (lakehouse.silver._sessions)."""
    incremental, rebuild, _, _ = lakes
    inc, full = _table(incremental, "silver", "sessions"), _table(rebuild, "silver", "sessions")
    assert len(inc) > 0 and inc.equals(full)


def test_every_incremental_run_processed_only_its_new_files_and_says_what_it_recomputed(lakes):
    _, rebuild, summaries, _ = lakes
    first = min(_gold(rebuild, "engagement_daily")["activity_date"])
    assert all(s.status == "success" for s in summaries)
    assert all(s.lines_total() > 0 for s in summaries)
    assert summaries[0].recomputed.startswith("full rebuild (no earlier gold run")
    # Every later run rebuilds from the first date its data can change, never the whole range.
    assert all(s.recomputed.startswith("incremental: ") for s in summaries[1:]), [s.recomputed for s in summaries]
    for s in summaries[1:-1]:  # batches of two new days: at most those, the range's new dates and a moved session
        since = dt.date.fromisoformat(s.recomputed.split("dates from ")[1][:10])
        assert since >= first + dt.timedelta(days=LATE_DAY), s.recomputed
    # The late day's file rebuilds from its own date on.
    late = first + dt.timedelta(days=LATE_DAY)
    assert f"dates from {late} " in summaries[-1].recomputed, summaries[-1].recomputed


def test_late_events_correct_the_days_they_belong_to(lakes):
    incremental, rebuild, _, before_late = lakes
    after = _gold(incremental, "engagement_daily").set_index("activity_date")
    before = before_late.set_index("activity_date")
    late_date = min(after.index) + dt.timedelta(days=LATE_DAY)
    # The late file's day gains its users when the file lands 16 days later, as do its rolling windows.
    assert after.loc[late_date, "dau"] > before.loc[late_date, "dau"]
    assert after.loc[late_date + dt.timedelta(days=6), "wau"] >= before.loc[late_date + dt.timedelta(days=6), "wau"]
    full = _gold(rebuild, "engagement_daily").set_index("activity_date")
    assert after.loc[late_date].equals(full.loc[late_date])


def test_stale_profile_updates_never_win(lakes):
    incremental, _, _, _ = lakes
    users = _gold(incremental, "users")
    assert "ZZ" not in set(users["country"])


def test_funnel_windows_close_as_days_land(lakes, cfg):
    """The first run sees two days, so every funnel window is open; as days land, the entries whose
    window has closed by the lake's last date E are flagged complete, in funnel_daily and funnel_entries."""
    incremental, rebuild, _, _ = lakes
    window = dt.timedelta(days=int(cfg["funnel"]["window_days"]))
    last = max(_gold(rebuild, "engagement_daily")["activity_date"])
    for name in ("funnel_daily", "funnel_entries"):
        got = _gold(incremental, name)
        dates = got["activity_date"].map(lambda d: d + window)
        assert got["is_window_complete"].tolist() == (dates <= last).tolist(), name
        assert got["is_window_complete"].any() and not got["is_window_complete"].all(), name
    # Both counts come from the same entries.
    entries = _gold(incremental, "funnel_entries")
    daily = _gold(incremental, "funnel_daily")
    assert int(daily[daily["step_index"] == 1]["users"].sum()) == len(entries)


def test_no_run_leaves_checkpoints_or_caches_behind_in_a_long_lived_session(lakes):
    assert len(LEFT_BEHIND) == 11 and all(not left for left in LEFT_BEHIND), LEFT_BEHIND
