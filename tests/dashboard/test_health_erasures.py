"""The health page lists every erasure: pending ones with the date their replaced files go, completed
ones with when they went (ops.erasures, docs/maintenance.md "Completing an erasure")."""

from __future__ import annotations

import sys
from datetime import datetime, timedelta, timezone

from plotly.io.json import to_json_plotly

from dashboard import data
from dashboard.app import create_app
from fake_lake import write_erasures

NOW = datetime.now(timezone.utc).replace(second=0, microsecond=0)
H = timedelta(hours=1)
DONE_DUE, DONE_AT = datetime(2026, 1, 8, 10, 30, tzinfo=timezone.utc), datetime(2026, 1, 8, 11, 15, tzinfo=timezone.utc)


def _row(eid, user, ended, due=None, deleted=None, status="completed"):
    return {"erasure_id": eid, "requested_at": ended - H, "completed_at": ended, "user_id_hash": user,
            "rows_removed_json": "{}", "status": status, "files_tables_json": None if due is None else '["gold.users"]',
            "files_due_at": due, "files_deleted_at": deleted}


def test_the_health_page_shows_pending_erasures_with_their_due_date_and_completed_ones_with_when(fresh_lake):
    create_app(fresh_lake.root, users={}, warm=False)
    data.clear_caches()
    pending_due = NOW + 167 * H
    write_erasures(fresh_lake.root, [
        _row("pend1", "h1", NOW - H, due=pending_due), _row("pend1", "h2", NOW - H, due=pending_due),
        _row("over1", "h3", NOW - 200 * H, due=NOW - 32 * H),
        _row("done1", "h4", DONE_DUE - 168 * H, due=DONE_DUE, deleted=DONE_AT),
        _row("old1", "h5", datetime(2025, 6, 1, 9, 0, tzinfo=timezone.utc)),  # logged before files were tracked
    ])

    e = data.erasures().set_index("erasure_id")
    assert e.loc["pend1", "users"] == 2
    assert list(e["old_files"].loc[["pend1", "over1", "done1", "old1"]]) == ["pending", "overdue", "deleted",
                                                                            "not tracked"]
    assert e.loc["pend1", "due_at"] == pending_due and e.loc["done1", "deleted_at"] == DONE_AT

    out = sys.modules["pages.health"].update_health(0, "light")
    table = to_json_plotly(out[-2])
    assert all(h in table for h in ("Replaced files on disk", "Due (UTC)", "Completed (UTC)"))
    rows = {r["props"]["children"][0]["props"]["children"]: r for r in _rows(out[-2])}
    cells = {eid: [c["props"]["children"] for c in r["props"]["children"]] for eid, r in rows.items()}
    assert cells["pend1"][4:] == ["pending", f"{pending_due:%Y-%m-%d %H:%M}", ""]
    assert cells["done1"][4:] == ["deleted", "2026-01-08 10:30", "2026-01-08 11:15"]
    assert cells["over1"][4] == "overdue" and rows["over1"]["props"]["className"] == "table-warning"
    assert cells["old1"][4:] == ["not tracked", "", ""]
    assert list(rows) == ["pend1", "over1", "done1", "old1"]  # latest request first


def _rows(view) -> list[dict]:
    """The <tr> elements of a table_view's body, as plotly JSON."""
    import json

    table = json.loads(to_json_plotly(view))[1]
    body = table["props"]["children"][1]
    return body["props"]["children"]
