"""The generator's landing folder in the other shapes the lake reads: Segment calls and CSV exports.

`lakehouse generate --format segment|csv` writes the landing folder first, then rewrites each of its
files in the other shape, line by line, so that one seed gives the same gold whatever the shape
(tests/test_sources.py). Standard library only; deterministic.

* `segment`: `OUT/calls/<file>.jsonl`, one call per line. Each event is a `track` call (a
  `page_view` a `page` call named by its page); `messageId` is the event id, `timestamp` its
  time; the context goes where Segment puts it (`context.location`, `context.device.type`...).
  A user's events before their `signup` event in the same file are sent under an anonymous id
  only, and an `alias` call ties that id to the user: in the same file, or, for every
  LATE_TIE_EVERY-th such user, in the next day's file (a tie that arrives late). Each profile is
  an `identify` call with its traits. Lines that are not JSON objects are copied as they are.
* `csv`: `OUT/events/<day>.csv` with a header (`event_id,user_id,session_id,event_type,
  timestamp`, the context fields, then every property seen in the file; objects and arrays as
  JSON text) and `OUT/users/<file>.csv` (the contract's profile fields).
* `sql`: `OUT/events_raw.sql`, a PostgreSQL script (`psql -f`) that creates the table `events_raw`
  (an increasing `id` to serve as the watermark of a `jdbc` source, the event's fields, its
  context and one text column per property of the contract) and loads every event with `COPY`.
  Values are text exactly as sent, as in the CSV shape. Profiles are not part of it.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import os
import shutil
from pathlib import Path

FORMATS = ("landing", "segment", "csv", "sql")
# The typed properties of the contract (docs/spec/events.md), one column each in `events_raw`.
SQL_PROPERTIES = ("page", "item_id", "item_type", "category", "price", "quantity", "cart_value", "order_id", "amount",
                  "currency", "payment_status", "items", "course_id", "progress_pct", "quiz_id", "score", "max_score",
                  "passed", "duration_s", "points", "reason", "reward", "channel")
LATE_TIE_EVERY = 3
CONTEXT = ("country", "city", "device", "os", "app_version", "referrer")
PROFILE = ("user_id", "email", "registered_at", "gender", "birth_date", "age", "country", "city",
           "signup_channel", "updated_at")


def _read_lines(path: Path) -> list[str]:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", newline="") as fh:
        return fh.read().splitlines()


def _object(line: str) -> dict | None:
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _plain_name(path: Path) -> str:
    name = path.name
    for suffix in (".gz", ".jsonl", ".json", ".csv"):
        name = name.removesuffix(suffix)
    return name


def _anonymous_id(user_id: str) -> str:
    return "anon-" + hashlib.sha1(str(user_id).encode()).hexdigest()[:16]


def _profiles(path: Path) -> list[dict | str]:
    """A landing profile file's records (dicts), or raw lines that are not JSON objects."""
    lines = _read_lines(path)
    if path.name.endswith((".csv", ".csv.gz")):
        text = "\n".join(lines).removeprefix("\ufeff")
        rows = list(csv.reader(io.StringIO(text)))
        if not rows:
            return []
        header = [h.strip().lower() for h in rows[0]]
        return [{k: v.strip() for k, v in zip(header, row) if v.strip() != ""} for row in rows[1:]
                if row and [c.strip().lower() for c in row] != header]
    return [_object(line) or line for line in lines if line.strip()]


# ---------------------------------------------------------------- Segment

def _track(e: dict, anonymous: bool) -> dict:
    props = e.get("properties")
    ctx = e.get("context") if isinstance(e.get("context"), dict) else {}
    call = {"type": "page" if e.get("event") == "page_view" else "track", "messageId": e.get("event_id")}
    if call["type"] == "page":
        if isinstance(props, dict) and props.get("page") is not None:
            call["name"] = props["page"]
    else:
        call["event"] = e.get("event")
    call["anonymousId" if anonymous else "userId"] = e.get("user_id")
    call["timestamp"] = e.get("ts")
    context: dict = {}
    if e.get("session_id") is not None:
        context["sessionId"] = e["session_id"]
    if ctx.get("country") is not None or ctx.get("city") is not None:
        context["location"] = {k: ctx[k] for k in ("country", "city") if ctx.get(k) is not None}
    if ctx.get("device") is not None:
        context["device"] = {"type": ctx["device"]}
    if ctx.get("os") is not None:
        context["os"] = {"name": ctx["os"]}
    if ctx.get("app_version") is not None:
        context["app"] = {"version": ctx["app_version"]}
    if ctx.get("referrer") is not None:
        context["page"] = {"referrer": ctx["referrer"]}
    if context:
        call["context"] = context
    if props is not None:
        call["properties"] = props
    return {k: v for k, v in call.items() if v is not None}


def _identify(p: dict, n: int, source: str) -> dict:
    traits = {"email": p.get("email"), "createdAt": p.get("registered_at"), "gender": p.get("gender"),
              "birthday": p.get("birth_date"), "age": p.get("age"), "signup_channel": p.get("signup_channel")}
    address = {k: p[k] for k in ("country", "city") if p.get(k) not in (None, "")}
    if address:
        traits["address"] = address
    call = {"type": "identify", "messageId": f"identify-{source}-{n}", "userId": p.get("user_id"),
            "traits": {k: v for k, v in traits.items() if v not in (None, "")}}
    if p.get("updated_at") not in (None, ""):
        call["timestamp"] = p["updated_at"]
    return call


def _to_segment(landing: Path, out: Path) -> None:
    calls = out / "calls"
    calls.mkdir(parents=True, exist_ok=True)
    for path in sorted((landing / "users").rglob("*")):
        if path.is_file():
            with open(calls / f"identify-{_plain_name(path)}.jsonl", "w", encoding="utf-8") as fh:
                for n, p in enumerate(_profiles(path)):
                    fh.write((json.dumps(_identify(p, n, _plain_name(path))) if isinstance(p, dict) else p) + "\n")
    signed_up: set = set()
    late: list[dict] = []
    tied = 0
    for path in sorted((landing / "events").rglob("*")):
        if not path.is_file():
            continue
        lines = _read_lines(path)
        # Users whose signup event is in this file: their earlier events in it are anonymous.
        signup_at = {}
        for line in lines:
            e = _object(line)
            if e and e.get("event") == "signup" and e.get("user_id") not in signed_up and isinstance(e.get("ts"), str):
                signup_at.setdefault(e["user_id"], e["ts"])
        out_lines, ties_now, ties_later, went_anonymous = [json.dumps(c) for c in late], [], [], set()
        late = []
        for line in lines:
            e = _object(line)
            if e is None or not isinstance(e.get("user_id"), str):
                out_lines.append(line)
                continue
            user = e["user_id"]
            anonymous = user in signup_at and isinstance(e.get("ts"), str) and e["ts"] < signup_at[user]
            call = _track(e, anonymous)
            if anonymous:
                call["anonymousId"] = _anonymous_id(user)
                went_anonymous.add(user)
            out_lines.append(json.dumps(call))
        for user, ts in sorted(signup_at.items()):
            if user not in went_anonymous:
                signed_up.add(user)
                continue
            tied += 1
            alias = {"type": "alias", "messageId": f"alias-{user}", "previousId": _anonymous_id(user), "userId": user,
                     "timestamp": ts}
            (ties_later if tied % LATE_TIE_EVERY == 0 else ties_now).append(alias)
            signed_up.add(user)
        out_lines += [json.dumps(c) for c in ties_now]
        late = ties_later
        with open(calls / f"{_plain_name(path)}.jsonl", "w", encoding="utf-8") as fh:
            fh.write("\n".join(out_lines) + ("\n" if out_lines else ""))
    if late:
        with open(calls / "zz-late-ties.jsonl", "w", encoding="utf-8") as fh:
            fh.write("\n".join(json.dumps(c) for c in late) + "\n")


# ---------------------------------------------------------------- CSV

def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def _to_csv(landing: Path, out: Path) -> None:
    (out / "events").mkdir(parents=True, exist_ok=True)
    (out / "users").mkdir(parents=True, exist_ok=True)
    for path in sorted((landing / "events").rglob("*")):
        if not path.is_file():
            continue
        rows, props = [], []
        for line in _read_lines(path):
            e = _object(line)
            if e is None:
                rows.append({"event_id": line})  # not an event: quarantined, as in the landing
                continue
            p = e.get("properties") if isinstance(e.get("properties"), dict) else {}
            ctx = e.get("context") if isinstance(e.get("context"), dict) else {}
            row = {"event_id": e.get("event_id"), "user_id": e.get("user_id"), "session_id": e.get("session_id"),
                   "event_type": e.get("event"), "timestamp": e.get("ts"), **{c: ctx.get(c) for c in CONTEXT}}
            for k, v in p.items():
                if k not in props:
                    props.append(k)
                row[f"p:{k}"] = v
            rows.append(row)
        header = ["event_id", "user_id", "session_id", "event_type", "timestamp", *CONTEXT, *props]
        with open(out / "events" / f"{_plain_name(path)}.csv", "w", encoding="utf-8", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(header)
            for r in rows:
                w.writerow([_cell(r.get(h if h in header[:5 + len(CONTEXT)] else f"p:{h}")) for h in header])
    for path in sorted((landing / "users").rglob("*")):
        if not path.is_file():
            continue
        with open(out / "users" / f"users-{_plain_name(path)}.csv", "w", encoding="utf-8", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(PROFILE)
            for p in _profiles(path):
                if isinstance(p, dict):
                    w.writerow([_cell(p.get(h)) for h in PROFILE])


def _copy_text(value) -> str:
    """A value in COPY's text format: \\N for null, backslash, tab and line breaks escaped."""
    if value is None:
        return "\\N"
    text = _cell(value)
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _to_sql(landing: Path, out: Path) -> None:
    columns = ["event_id", "user_id", "session_id", "event_type", "ts", *CONTEXT, *SQL_PROPERTIES]
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "events_raw.sql", "w", encoding="utf-8") as fh:
        fh.write("CREATE TABLE IF NOT EXISTS events_raw (id bigserial PRIMARY KEY, "
                 + ", ".join(f"{c} text" for c in columns) + ");\n")
        fh.write(f"COPY events_raw ({', '.join(columns)}) FROM stdin;\n")
        for path in sorted((landing / "events").rglob("*")):
            if not path.is_file():
                continue
            for line in _read_lines(path):
                e = _object(line)
                if e is None:
                    continue  # not an event: the landing's quarantine case has no row here
                p = e.get("properties") if isinstance(e.get("properties"), dict) else {}
                ctx = e.get("context") if isinstance(e.get("context"), dict) else {}
                row = [e.get("event_id"), e.get("user_id"), e.get("session_id"), e.get("event"), e.get("ts"),
                       *[ctx.get(c) for c in CONTEXT], *[p.get(k) for k in SQL_PROPERTIES]]
                fh.write("\t".join(_copy_text(v) for v in row) + "\n")
        fh.write("\\.\n")


def convert(landing: str, out: str, fmt: str) -> None:
    """Write the landing folder `landing` in shape `fmt` (`segment`, `csv` or `sql`) into `out`."""
    writers = {"segment": _to_segment, "csv": _to_csv, "sql": _to_sql}
    if fmt not in writers:
        raise ValueError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
    writers[fmt](Path(landing), Path(out))


def generate(out: str, fmt: str = "landing", **kwargs) -> dict:
    """`lakehouse.generator.generate` in the shape `fmt`: the landing folder, or it converted."""
    from lakehouse import generator

    if fmt == "landing":
        return generator.generate(out, **kwargs)
    if fmt not in FORMATS:
        raise ValueError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
    staging = os.path.join(out, ".landing")
    try:
        summary = generator.generate(staging, **kwargs)
        convert(staging, out, fmt)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return summary
