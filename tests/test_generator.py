"""Tests for lakehouse.generator: formats of events.md, determinism, behaviour, memory.

Pure Python (no Spark). One shared dataset is generated per module to keep the file fast.
"""
from __future__ import annotations

import collections
import csv
import datetime
import glob
import gzip
import json
import os
import re
import sys
import tracemalloc
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # so the tests run without an installed package or conftest
    sys.path.insert(0, str(ROOT))

from lakehouse import generator  # noqa: E402

START = datetime.date(2025, 11, 17)   # a Monday: 28 days are exactly four weeks, two months
DAYS = 28
UTC = datetime.timezone.utc
EVENTS = {"app_install", "app_uninstall", "signup", "session_start", "session_end", "page_view",
          "item_view", "wishlist_add", "add_to_cart", "checkout_start", "purchase",
          "course_progress", "quiz_attempt", "points_earned", "points_redeemed"}
DEVICES = {"mobile", "web", "tablet", "desktop"}
ITEM_FIELDS = {"item_id": str, "item_type": str, "category": str, "price": (int, float)}
PROPERTIES = {  # event -> {property: type} as in events.md
    "signup": {"channel": str},
    "page_view": {"page": str},
    "item_view": ITEM_FIELDS,
    "wishlist_add": {**ITEM_FIELDS, "quantity": int},
    "add_to_cart": {**ITEM_FIELDS, "quantity": int},
    "checkout_start": {"cart_value": (int, float)},
    "purchase": {"order_id": str, "amount": (int, float), "currency": str,
                 "payment_status": str, "items": list},
    "course_progress": {"course_id": str, "progress_pct": (int, float)},
    "quiz_attempt": {"quiz_id": str, "course_id": str, "score": (int, float),
                     "max_score": (int, float), "passed": bool, "duration_s": (int, float)},
    "points_earned": {"points": int, "reason": str},
    "points_redeemed": {"points": int, "reward": str},
}


def instant(text):
    """An ISO-8601 string as a UTC datetime; no offset means UTC (events.md)."""
    value = datetime.datetime.fromisoformat(text)
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)


def read_event_lines(out):
    """(file path, raw line) for every event line, files in name order."""
    rows = []
    for path in sorted(glob.glob(os.path.join(out, "events", "date=*", "*"))):
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rb") as handle:
            rows.extend((path, raw.decode("utf-8").rstrip("\n")) for raw in handle)
    return rows


def file_date(path):
    """The date in an event file's partition folder."""
    return datetime.date.fromisoformat(re.search(r"date=(\d{4}-\d\d-\d\d)", path).group(1))


def all_bytes(out):
    """Relative path -> bytes for every file under a folder."""
    root = Path(out)
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """One mid-sized dataset plus its parsed, deduplicated events and profile rows."""
    out = str(tmp_path_factory.mktemp("landing"))
    summary = generator.generate(out, users=1500, days=DAYS, seed=11, start=START)
    lines = read_event_lines(out)
    events, seen = [], set()
    for path, raw in lines:
        event = json.loads(raw)
        if event["event_id"] not in seen:
            seen.add(event["event_id"])
            event["_at"] = instant(event["ts"])
            events.append(event)
    with open(os.path.join(out, "users", "profiles-initial.jsonl"), encoding="utf-8") as handle:
        initial = [json.loads(line) for line in handle]
    updates = []   # in arrival order: files by month, rows by line
    for path in sorted(glob.glob(os.path.join(out, "users", "updates-*.csv"))):
        with open(path, encoding="utf-8", newline="") as handle:
            updates.extend(csv.DictReader(handle))
    return {"out": out, "summary": summary, "lines": lines, "events": events,
            "initial": initial, "updates": updates}


def active_days(events):
    """date -> set of users with an active event (everything except app_uninstall) that day."""
    days = collections.defaultdict(set)
    for e in events:
        if e["event"] != "app_uninstall":
            days[e["_at"].date()].add(e["user_id"])
    return days


# ----- determinism and layout ------------------------------------------------------
def test_same_seed_gives_identical_bytes(tmp_path):
    generator.generate(str(tmp_path / "a"), users=200, days=10, seed=5)
    generator.generate(str(tmp_path / "b"), users=200, days=10, seed=5)
    a, b = all_bytes(tmp_path / "a"), all_bytes(tmp_path / "b")
    assert a.keys() == b.keys() and len(a) > 10
    assert a == b


def test_different_seed_differs(tmp_path):
    generator.generate(str(tmp_path / "a"), users=200, days=10, seed=5)
    generator.generate(str(tmp_path / "b"), users=200, days=10, seed=6)
    a, b = all_bytes(tmp_path / "a"), all_bytes(tmp_path / "b")
    assert all(a[k] != b[k] for k in a if k.startswith("events") and k in b)


def test_default_start_ends_the_day_before_2026(tmp_path):
    generator.generate(str(tmp_path), users=30, days=7, seed=1)
    folders = sorted(p.name for p in (tmp_path / "events").iterdir())
    assert folders[0] == "date=2025-12-25" and folders[-1] == "date=2025-12-31"


def test_one_file_per_day_every_third_gzipped(data):
    paths = sorted(glob.glob(os.path.join(data["out"], "events", "date=*", "*")))
    assert len(paths) == DAYS == data["summary"]["event_files"]
    for k, path in enumerate(paths):
        day = (START + datetime.timedelta(days=k)).isoformat()
        suffix = ".jsonl.gz" if k % 3 == 2 else ".jsonl"
        assert path.endswith(f"date={day}{os.sep}events-{day}{suffix}")
    assert not glob.glob(os.path.join(data["out"], "**", ".*"), recursive=True)  # no temp files left


def test_gzip_files_are_deterministic(data):
    gz = sorted(glob.glob(os.path.join(data["out"], "events", "*", "*.gz")))
    assert len(gz) == DAYS // 3
    for path in gz:
        header = Path(path).read_bytes()[:10]
        assert header[:3] == b"\x1f\x8b\x08"
        assert header[3] & 0x08 == 0, "no file name stored in the header"
        assert header[4:8] == b"\x00\x00\x00\x00", "mtime is zero"


def test_summary_counts_match_files(data):
    summary = data["summary"]
    assert summary["events"] == len(data["lines"])
    assert summary["users"] == 1500
    assert summary["profile_files"] == 1 + 2   # initial + November and December updates
    assert summary["events"] - summary["duplicates"] == len(data["events"])


def test_cli_prints_summary(tmp_path, capsys):
    assert generator.main(["--out", str(tmp_path), "--users", "40", "--days", "5",
                           "--seed", "3", "--start", "2025-06-01", "--quiet"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["event_files"] == 5 and summary["users"] == 40
    assert (tmp_path / "events" / "date=2025-06-01").is_dir()


# ----- the input contract ------------------------------------------------------------
def test_every_line_is_valid_per_events_md(data):
    end = datetime.datetime.combine(START + datetime.timedelta(days=DAYS), datetime.time(), UTC)
    for path, raw in data["lines"]:
        e = json.loads(raw)
        for field in ("event_id", "event", "ts", "user_id"):
            assert isinstance(e[field], str) and e[field], (field, raw)
        assert e["event"] in EVENTS
        at = instant(e["ts"])
        assert at < end + datetime.timedelta(hours=1), raw
        assert at.date() <= file_date(path)
        assert isinstance(e.get("session_id", ""), str)
        ctx = e["context"]
        assert re.fullmatch(r"[A-Za-z]{2}", ctx["country"]) and ctx["device"] in DEVICES
        assert all(isinstance(ctx[k], str) for k in ("city", "os", "app_version", "referrer"))
        props = e.get("properties", {})
        for name, kind in PROPERTIES.get(e["event"], {}).items():
            assert isinstance(props[name], kind), (name, raw)
        if e["event"] == "purchase":
            assert props["amount"] >= 0 and props["payment_status"] in ("success", "failed")
            assert props["items"] and re.fullmatch(r"[A-Z]{3}", props["currency"])
        if e["event"] in ("points_earned", "points_redeemed"):
            assert props["points"] > 0
        if e["event"] == "course_progress":
            assert 0 <= props["progress_pct"] <= 100
        if e["event"] == "quiz_attempt":
            assert 0 <= props["score"] <= props["max_score"]
            assert props["passed"] == (props["score"] >= 0.6 * props["max_score"])
        if e["event"] in ("item_view", "add_to_cart", "wishlist_add"):
            assert props["item_type"] in ("course", "product") and props["price"] >= 0


def test_event_ids_unique_except_exact_duplicates(data):
    by_id = collections.defaultdict(set)
    for _, raw in data["lines"]:
        by_id[json.loads(raw)["event_id"]].add(raw)
    assert all(len(copies) == 1 for copies in by_id.values()), "a repeated id is the same line"
    assert len(data["lines"]) - len(by_id) == data["summary"]["duplicates"]


def test_timestamps_use_z_offsets_and_no_offset(data):
    styles = collections.Counter()
    for e in data["events"]:
        ts = e["ts"]
        styles["Z" if ts.endswith("Z") else "offset" if re.search(r"[+-]\d\d:\d\d$", ts) else "none"] += 1
    total = sum(styles.values())
    assert styles["Z"] > 0.7 * total
    assert styles["offset"] > 0.03 * total and styles["none"] > 0
    assert any(e["ts"].endswith("+05:30") for e in data["events"])


def test_about_ten_percent_of_users_send_no_session_id(data):
    with_sid, without = set(), set()
    for e in data["events"]:
        if e["event"] != "app_uninstall":
            (with_sid if "session_id" in e else without).add(e["user_id"])
    assert not with_sid & without, "a client either sends session ids or never does"
    assert 0.05 < len(without) / len(with_sid | without) < 0.15


def test_context_country_mostly_matches_profile(data):
    country = {p["user_id"]: p["country"].upper() for p in data["initial"]}
    pairs = [(e["context"]["country"].upper(), country[e["user_id"]])
             for e in data["events"] if e["user_id"] in country]
    assert sum(a == b for a, b in pairs) / len(pairs) > 0.9


# ----- users and profiles ------------------------------------------------------------------
def test_every_event_user_starts_with_install_or_signup(data):
    first = {}
    for e in sorted(data["events"], key=lambda e: e["_at"]):
        first.setdefault(e["user_id"], e)
    onboarding = {(e["user_id"], e["_at"].date()) for e in data["events"]
                  if e["event"] in ("app_install", "signup")}
    assert all((u, e["_at"].date()) in onboarding for u, e in first.items())
    assert all(e["event"] in ("app_install", "session_start") for e in first.values())


def test_registered_at_equals_signup_time(data):
    registered = {p["user_id"]: instant(p["registered_at"]) for p in data["initial"]}
    signups = [e for e in data["events"] if e["event"] == "signup"]
    assert len(signups) > 1000
    assert all(registered[e["user_id"]] == e["_at"] for e in signups)


def test_some_profiles_registered_before_first_event(data):
    first = {}
    for e in data["events"]:
        first[e["user_id"]] = min(first.get(e["user_id"], e["_at"]), e["_at"])
    early = [p for p in data["initial"] if p["user_id"] in first
             and instant(p["registered_at"]) < first[p["user_id"]] - datetime.timedelta(days=1)]
    assert 0.01 < len(early) / len(first) < 0.08


def test_some_event_users_have_no_profile(data):
    users = {e["user_id"] for e in data["events"]}
    profiled = {p["user_id"] for p in data["initial"]}
    assert 0.02 < len(users - profiled) / len(users) < 0.09
    assert profiled - users, "a few registered users never produced an event"


def test_profiles_have_free_text_demographics(data):
    profiles = data["initial"]
    genders = {p["gender"] for p in profiles}
    assert {"M", "male", "F", "Female", "woman", "non-binary", "nb", ""} <= genders
    assert sum("birth_date" in p for p in profiles) > 0.75 * len(profiles)
    assert any(isinstance(p.get("age"), int) for p in profiles)
    for p in profiles:
        assert {"user_id", "registered_at", "updated_at", "email", "country", "city",
                "signup_channel"} <= p.keys()
        assert instant(p["updated_at"]) > instant(p["registered_at"])
        if "birth_date" in p:
            datetime.date.fromisoformat(p["birth_date"])


def test_profiles_include_out_of_order_updates(data):
    latest = {p["user_id"]: instant(p["updated_at"]) for p in data["initial"]}
    initial = dict(latest)
    newer = older = older_than_initial = 0
    for row in data["updates"]:
        assert set(row) == set(generator.PROFILE_FIELDS)
        user, at = row["user_id"], instant(row["updated_at"])
        if at > latest[user]:
            newer += 1
            latest[user] = at
        else:
            older += 1
            older_than_initial += at < initial[user]
    assert newer > 20 and older > 3 and older_than_initial > 0
    changed = {(r["user_id"], r["city"]) for r in data["updates"]} - \
              {(p["user_id"], p["city"]) for p in data["initial"]}
    assert changed, "updates change the city of some users"


# ----- delivery quirks -------------------------------------------------------------------
def test_duplicates_and_late_events_present(data):
    summary = data["summary"]
    total = summary["events"]
    assert 0.001 < summary["duplicates"] / total < 0.006
    assert 0.0005 < summary["late_events"] / total < 0.004
    late = [raw for path, raw in data["lines"]
            if (file_date(path) - instant(json.loads(raw)["ts"]).date()).days >= 2]
    assert len(late) >= summary["late_events"]
    files_of = collections.defaultdict(set)
    for path, raw in data["lines"]:
        files_of[json.loads(raw)["event_id"]].add(path)
    assert any(len(paths) > 1 for paths in files_of.values()), "some duplicates in a later file"


# ----- behaviour ---------------------------------------------------------------------------
def test_weekend_activity_lower_than_weekday(data):
    days = active_days(data["events"])
    dau = [len(days.get(START + datetime.timedelta(days=k), ())) for k in range(DAYS)]
    # DAU relative to its centred 7-day mean, which removes the growth trend
    ratio = {k: dau[k] * 7 / sum(dau[k - 3:k + 4]) for k in range(3, DAYS - 3)}
    weekend = [v for k, v in ratio.items() if (START + datetime.timedelta(days=k)).weekday() >= 5]
    weekday = [v for k, v in ratio.items() if (START + datetime.timedelta(days=k)).weekday() < 5]
    assert sum(weekend) / len(weekend) < 0.9 * sum(weekday) / len(weekday)


def test_hourly_rhythm_evening_peak_and_morning_uninstalls(data):
    def peak(name):
        hours = collections.Counter(e["_at"].hour for e in data["events"] if e["event"] == name)
        return max(hours, key=hours.get), hours
    session_peak, sessions = peak("session_start")
    assert 16 <= session_peak <= 22
    assert sessions[session_peak] > 2 * sessions[4]
    purchase_peak, _ = peak("purchase")
    uninstall_peak, _ = peak("app_uninstall")
    assert purchase_peak != uninstall_peak


def test_signups_grow_over_time(data):
    per_week = collections.Counter((e["_at"].date() - START).days // 7
                                   for e in data["events"] if e["event"] == "signup")
    assert per_week[3] > 1.5 * per_week[0]


def test_retention_decays_with_tenure(data):
    days = active_days(data["events"])
    first = {}
    for d in sorted(days):
        for u in days[d]:
            first.setdefault(u, d)
    cohort = [u for u, d in first.items() if d <= START + datetime.timedelta(days=DAYS - 15)]

    def retained(n):
        return sum(u in days.get(first[u] + datetime.timedelta(days=n), ()) for u in cohort)
    assert retained(1) > retained(14) > 0


def test_some_users_resurrect_after_a_gap(data):
    dates = collections.defaultdict(list)
    for d, users in sorted(active_days(data["events"]).items()):
        for u in users:
            dates[u].append(d)
    gaps = [max((b - a).days for a, b in zip(ds, ds[1:])) for ds in dates.values() if len(ds) > 1]
    assert sum(g >= 7 for g in gaps) > 20


def test_uninstall_usually_followed_by_inactivity(data):
    last_active = {}
    for e in data["events"]:
        if e["event"] != "app_uninstall":
            last_active[e["user_id"]] = max(last_active.get(e["user_id"], e["_at"]), e["_at"])
    uninstalls = [e for e in data["events"] if e["event"] == "app_uninstall"]
    assert len(uninstalls) > 30
    quiet = sum(last_active[e["user_id"]] < e["_at"] for e in uninstalls)
    assert quiet > 0.8 * len(uninstalls)


def test_mobile_converts_worse_than_desktop(data):
    carts, buys = collections.defaultdict(set), collections.defaultdict(set)
    for e in data["events"]:
        key = (e["user_id"], e["_at"].date())
        if e["event"] == "add_to_cart":
            carts[e["context"]["device"]].add(key)
        elif e["event"] == "purchase" and e["properties"]["payment_status"] == "success":
            buys[e["context"]["device"]].add(key)
    rate = {dev: len(buys[dev] & carts[dev]) / len(carts[dev]) for dev in ("mobile", "desktop")}
    assert len(carts["desktop"]) > 100
    assert rate["mobile"] < 0.75 * rate["desktop"]


def test_failed_payments_about_five_percent(data):
    status = collections.Counter(e["properties"]["payment_status"]
                                 for e in data["events"] if e["event"] == "purchase")
    assert 0.02 < status["failed"] / sum(status.values()) < 0.09


def test_redemptions_never_exceed_earnings(data):
    balance = collections.Counter()
    redeemed = 0
    for e in sorted(data["events"], key=lambda e: (e["_at"], e["event"] == "points_redeemed")):
        if e["event"] == "points_earned":
            balance[e["user_id"]] += e["properties"]["points"]
        elif e["event"] == "points_redeemed":
            balance[e["user_id"]] -= e["properties"]["points"]
            redeemed += 1
            assert balance[e["user_id"]] >= 0, e
    assert redeemed > 20


def test_courses_completed_and_quizzes_taken(data):
    progress = [e["properties"]["progress_pct"] for e in data["events"] if e["event"] == "course_progress"]
    quizzes = [e["properties"] for e in data["events"] if e["event"] == "quiz_attempt"]
    assert progress.count(100) > 10
    assert any(q["passed"] for q in quizzes) and not all(q["passed"] for q in quizzes)


def test_sessions_have_several_events_within_minutes(data):
    sessions = collections.defaultdict(list)
    for e in data["events"]:
        if "session_id" in e:
            sessions[e["session_id"]].append(e["_at"])
    sizes = [len(ts) for ts in sessions.values()]
    lengths = sorted((max(ts) - min(ts)).total_seconds() for ts in sessions.values())
    assert sum(sizes) / len(sizes) > 5
    assert 60 < lengths[len(lengths) // 2] < 3600


def test_events_per_active_user_day_in_range(data):
    per_day = collections.Counter((e["user_id"], e["_at"].date()) for e in data["events"]
                                  if e["event"] != "app_uninstall")
    assert 8 <= sum(per_day.values()) / len(per_day) <= 15


# ----- resources ---------------------------------------------------------------------------
def test_memory_bounded(tmp_path):
    tracemalloc.start()
    try:
        summary = generator.generate(str(tmp_path), users=2000, days=30, seed=2)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert summary["events"] > 50_000
    assert peak < 50 * 2**20, f"peak {peak / 2**20:.1f} MiB"
