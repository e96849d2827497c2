"""Where events and profiles come from: the named sources a run ingests (docs/sources.md).

A source has a name, a kind and a location:

* `landing`: the landing folder of docs/spec/events.md (`events/` and `users/` below it);
* `segment`: files of Segment-spec calls (`track`, `page`, `screen`, `identify`, `alias`), one
  JSON call or `{"batch": [...]}` body per line, gzip or not, as the object-storage destinations
  of Segment, RudderStack or Jitsu write them;
* `csv`: CSV exports with a header, events and profiles, mapped column by column;
* `jdbc`: a table or query in a relational database, read incrementally by a watermark column.

Sources are declared in the layered config (`sources:`, a list) or given on the command line as
`KIND:URI` with that kind's default mapping. Bronze keeps each raw record verbatim with its
source; silver maps it onto the events and profiles contract (`lakehouse.transforms.sources`).
"""

from __future__ import annotations

import copy
import dataclasses
import os
import re
from dataclasses import dataclass, field

from lakehouse.transforms.sources import CONTEXT_FIELDS, EVENT_FIELDS, PROFILE_FIELDS

KINDS = ("landing", "segment", "csv", "jdbc")
DEFAULT_NAME = "landing"  # the source `--landing DIR` names (null in bronze rows written before sources)

# Files each file kind reads, per feed (bronze.events / bronze.users).
JSON_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".json.gz", ".ndjson", ".ndjson.gz")
CSV_SUFFIXES = (".csv", ".csv.gz")

class SourceError(ValueError):
    """A source the run cannot use; the message names the source and what to fix."""


@dataclass(frozen=True)
class Source:
    """One named source: its kind, where it is, and its mapping options (`options`, per kind)."""

    name: str
    kind: str
    uri: str
    options: dict = field(default_factory=dict, compare=False, hash=False)

    def describe(self) -> str:
        """`name (kind) uri`, secrets left out (a JDBC URL's password is never shown)."""
        return f"{self.name} ({self.kind}) {redact(self.uri)}"


def redact(text: str) -> str:
    """`text` with any `password=...` or `user:password@` part of a URL replaced by `***`."""
    text = re.sub(r"(?i)(password=)[^&;\s]*", r"\1***", str(text))
    return re.sub(r"(//[^/:@\s]+:)[^@/\s]+@", r"\1***@", text)


def parse_flag(text: str, index: int = 0) -> Source:
    """A `--source KIND:URI` flag as a Source with that kind's default mapping.

    The name is the kind (`kind-2`, `kind-3`... for a second and third of the same kind: see
    `from_run`). A `jdbc:` flag is the whole JDBC URL, with the source's options in its query
    string (`_jdbc_flag`). Raises SourceError for an unknown kind or an empty location.
    """
    kind, sep, uri = str(text).partition(":")
    if not sep or not uri.strip():
        raise SourceError(f"--source {text!r}: expected KIND:URI with KIND one of {', '.join(KINDS)}")
    kind = kind.strip().lower()
    if kind not in KINDS:
        raise SourceError(f"--source {redact(text)!r}: unknown kind {kind!r} (expected one of {', '.join(KINDS)})")
    if kind == "jdbc":
        return validate(_jdbc_flag(str(text).strip()))
    return validate(Source(name=kind, kind=kind, uri=uri.strip(), options={}))


def _jdbc_flag(url: str) -> Source:
    """`--source jdbc:postgresql://HOST:PORT/DB?table=T&watermark=W&user=U&password_env=VAR`: the
    whole text is the JDBC URL; the source's own options (table, watermark, user, password_env,
    password_file, driver, fetch_size, lag) are taken out of its query string, the rest is the driver's."""
    from urllib.parse import parse_qsl

    base, sep, query = url.partition("?")
    options, rest = {}, []
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key in _OPTION_KEYS["jdbc"] - {"events", "query"}:
            options[key] = value
        else:
            rest.append(f"{key}={value}")
    return Source(name="jdbc", kind="jdbc", uri=base + ("?" + "&".join(rest) if rest else ""), options=options)


def from_config(cfg: dict) -> list[Source]:
    """The sources declared in the config's `sources:` list (empty when there are none)."""
    declared = cfg.get("sources") or []
    if not isinstance(declared, list):
        raise SourceError("sources: must be a list of {name, kind, uri, ...} entries")
    out = []
    for i, entry in enumerate(declared):
        if not isinstance(entry, dict):
            raise SourceError(f"sources[{i}]: must be a mapping with name, kind and uri")
        name = str(entry.get("name") or "").strip()
        kind = str(entry.get("kind") or "").strip().lower()
        if not re.fullmatch(r"[A-Za-z0-9_-]+", name):
            raise SourceError(f"sources[{i}]: name {name!r} must be letters, digits, '-' or '_'")
        if kind not in KINDS:
            raise SourceError(f"source {name}: unknown kind {kind!r} (expected one of {', '.join(KINDS)})")
        uri = str(entry.get("uri") or "").strip()
        if not uri:
            raise SourceError(f"source {name}: uri is required")
        options = {k: copy.deepcopy(v) for k, v in entry.items() if k not in ("name", "kind", "uri")}
        out.append(validate(Source(name=name, kind=kind, uri=uri, options=options)))
    return out


def from_run(cfg: dict, landing: str | None = None, flags: list[str] | None = None) -> list[Source]:
    """The sources of one run: `--landing DIR` (named `landing`), each `--source KIND:URI`, else the
    config's `sources:` list. Raises SourceError on a duplicate name or an invalid source."""
    out: list[Source] = []
    if landing:
        out.append(Source(name=DEFAULT_NAME, kind="landing", uri=landing))
    seen: dict[str, int] = {}
    for i, text in enumerate(flags or []):
        src = parse_flag(text, i)
        seen[src.kind] = seen.get(src.kind, 0) + 1
        if seen[src.kind] > 1 or any(s.name == src.name for s in out):
            src = dataclasses.replace(src, name=f"{src.kind}-{seen[src.kind] + (src.kind == 'landing')}")
        out.append(src)
    if not out:
        out = from_config(cfg)
    names = [s.name for s in out]
    for name in names:
        if names.count(name) > 1:
            raise SourceError(f"source {name}: declared twice (each source needs its own name)")
    return out


def options_for(cfg: dict, name: str, kind: str) -> dict:
    """The mapping options of the source `name` as the config declares it, else {} (the kind's
    defaults): silver maps bronze rows by the source name stored with them."""
    for entry in cfg.get("sources") or []:
        if isinstance(entry, dict) and str(entry.get("name", "")).strip() == name and str(entry.get("kind", "")).lower() == kind:
            return {k: v for k, v in entry.items() if k not in ("name", "kind", "uri")}
    return {}


_OPTION_KEYS = {
    "landing": set(),
    "segment": {"renames", "page_event", "tie_on_track"},
    "csv": {"events", "users"},
    "jdbc": {"table", "query", "watermark", "user", "password_env", "password_file", "driver", "fetch_size",
             "events", "lag"},
}
_CSV_FEED_KEYS = {"files", "fields", "properties", "context", "renames", "ts_format", "timezone", "id_columns",
                  "delimiter"}


def validate(src: Source) -> Source:
    """Check a source's options (names, types) without touching its data; returns it unchanged."""
    unknown = set(src.options) - _OPTION_KEYS[src.kind]
    if unknown:
        raise SourceError(f"source {src.name}: unknown option {sorted(unknown)[0]!r} for kind {src.kind} "
                          f"(expected: {', '.join(sorted(_OPTION_KEYS[src.kind])) or 'none'})")
    renames = src.options.get("renames")
    if renames is not None and not (isinstance(renames, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in renames.items())):
        raise SourceError(f"source {src.name}: renames must map event names to event names")
    if src.kind in ("csv", "jdbc"):
        for feed in ("events", "users") if src.kind == "csv" else ("events",):
            spec = src.options.get(feed)
            if spec is None:
                continue
            if not isinstance(spec, dict):
                raise SourceError(f"source {src.name}: {feed} must be a mapping (files, fields, properties, ...)")
            keys = _CSV_FEED_KEYS if src.kind == "csv" else _CSV_FEED_KEYS - {"files", "delimiter"}
            bad = set(spec) - keys
            if bad:
                raise SourceError(f"source {src.name}: unknown option {feed}.{sorted(bad)[0]} "
                                  f"(expected: {', '.join(sorted(keys))})")
            allowed = EVENT_FIELDS if feed == "events" else PROFILE_FIELDS
            for key, value in (spec.get("fields") or {}).items():
                if key not in allowed:
                    raise SourceError(f"source {src.name}: {feed}.fields.{key} is not a contract field "
                                      f"(expected one of {', '.join(allowed)})")
                if not isinstance(value, str) or not value.strip():
                    raise SourceError(f"source {src.name}: {feed}.fields.{key} must name a column")
            for section in ("properties", "context"):
                part = spec.get(section) or {}
                if not isinstance(part, dict):
                    raise SourceError(f"source {src.name}: {feed}.{section} must map a field name to a column")
                if section == "context":
                    for key in part:
                        if key not in CONTEXT_FIELDS:
                            raise SourceError(f"source {src.name}: {feed}.context.{key} is not a context field "
                                              f"(expected one of {', '.join(CONTEXT_FIELDS)})")
            if spec.get("ts_format") is not None:
                check_ts_format(src.name, feed, spec["ts_format"])
            if spec.get("timezone") is not None:
                import zoneinfo

                try:
                    zoneinfo.ZoneInfo(str(spec["timezone"]))
                except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                    raise SourceError(f"source {src.name}: {feed}.timezone {spec['timezone']!r} is not an IANA time zone") from None
    if src.kind == "jdbc":
        if not src.uri.startswith("jdbc:"):
            raise SourceError(f"source {src.name}: uri must be a JDBC URL (jdbc:postgresql://HOST:PORT/DB), got {redact(src.uri)!r}")
        if bool(src.options.get("table")) == bool(src.options.get("query")):
            raise SourceError(f"source {src.name}: give exactly one of table or query")
        if not src.options.get("watermark"):
            raise SourceError(f"source {src.name}: watermark (an increasing id or timestamp column) is required")
        if re.search(r"(?i)password=", src.uri):
            raise SourceError(f"source {src.name}: no password in the JDBC URL; use password_env or password_file")
        if not re.fullmatch(r'[A-Za-z_][\w$]*|"[^"]+"', str(src.options["watermark"])):
            raise SourceError(f"source {src.name}: watermark must be one column name, got {src.options['watermark']!r}")
        for key in ("lag", "fetch_size"):
            value = src.options.get(key)
            try:
                ok = value is None or float(value) >= 0
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise SourceError(f"source {src.name}: {key} must be a number >= 0, got {value!r}")
    return src


# Java DateTimeFormatter pattern letters Spark accepts (datetime patterns in Spark's docs).
_PATTERN_LETTERS = set("GyuDMLdQqEeaHhKkmsSnNAzZVOXxp'[]#{}.,:-/ T")


def check_ts_format(name: str, feed: str, pattern) -> None:
    """Fail in one line on a timestamp pattern Spark would refuse or misread (letters checked)."""
    text = str(pattern)
    outside_quotes = re.sub(r"'[^']*'", "", text)
    bad = sorted({c for c in outside_quotes if c.isalpha() and c not in _PATTERN_LETTERS})
    if not text.strip() or bad:
        raise SourceError(f"source {name}: {feed}.ts_format {text!r} is not a Spark datetime pattern"
                          + (f" (unknown letter {bad[0]!r})" if bad else ""))


def jdbc_password(src: Source) -> str | None:
    """The database password from `password_env` (an environment variable's name) or
    `password_file` (a file outside the repository); never from committed config."""
    env = src.options.get("password_env")
    if env:
        value = os.environ.get(str(env))
        if value is None:
            raise SourceError(f"source {src.name}: environment variable {env} (password_env) is not set")
        return value
    path = src.options.get("password_file")
    if path:
        try:
            with open(os.path.expanduser(str(path)), encoding="utf-8") as fh:
                return fh.read().strip()
        except OSError as exc:
            raise SourceError(f"source {src.name}: cannot read password_file {path}: {exc.strerror}") from None
    return None
