"""Data-quality rules as data (conf/*/expectations.yaml), applied to DataFrames by one helper.

Pure: no table IO. `load_rules` reads and validates the YAML; `apply` checks every rule of every
given table and returns the tables (failing rows removed for `drop` rules), one `ops.expectations`
row per rule and the `fail` rules that failed. Per table, one select adds a boolean "fails"
column per rule (windows for `unique`, `monotonic` and expressions that use OVER; left joins for
`join` rules) and one aggregation counts them; the aggregations of all given tables run as a
single Spark job.

Rule kinds (see docs/expectations.md):
  not_null        columns: [...]                       a row fails when any column is null
  unique          columns: [...]                       every row of a duplicated key fails (nulls compare equal)
  accepted_values column(s), values: [...]             value not in the list (null fails unless allow_null: true)
  range           column(s), min and/or max            value outside [min, max] (null passes unless allow_null: false)
  expression      name, expr (Spark SQL), join?        a row fails when expr is false (null passes)
  monotonic       column, order_by, partition_by?      value moves the wrong way vs the previous row
Row-level kinds (not_null, accepted_values, range, expression) take an optional `where`: rows where
it is not true pass.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml
from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakehouse.config import load_yaml
from lakehouse.tables import one_partition, quote_ident

ACTIONS = ("warn", "drop", "fail")
KINDS = ("not_null", "unique", "accepted_values", "range", "expression", "monotonic")
DIRECTIONS = ("non_increasing", "non_decreasing")
SAMPLE_SEPARATOR = "; "

_COMMON = {"rule", "action", "name"}
_KEYS = {
    "not_null": _COMMON | {"column", "columns", "where"},
    "unique": _COMMON | {"column", "columns"},
    "accepted_values": _COMMON | {"column", "columns", "values", "allow_null", "where"},
    "range": _COMMON | {"column", "columns", "min", "max", "allow_null", "where"},
    "expression": _COMMON | {"expr", "where", "join"},
    "monotonic": _COMMON | {"column", "order_by", "partition_by", "direction"},
}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Join:
    """Another table of the `tables` dict, left-joined on its key before an expression is evaluated."""

    table: str
    on: tuple[str, ...]


@dataclass(frozen=True)
class Rule:
    """One validated rule of expectations.yaml."""

    table: str
    kind: str
    action: str
    name: str
    columns: tuple[str, ...] = ()
    values: tuple[Any, ...] = ()
    allow_null: bool | None = None
    min: float | None = None
    max: float | None = None
    expr: str | None = None
    where: str | None = None
    join: Join | None = None
    order_by: tuple[str, ...] = ()
    partition_by: tuple[str, ...] = ()
    direction: str = "non_increasing"

    @property
    def description(self) -> str:
        """`table: name (action)`, as used in messages."""
        return f"{self.table}: {self.name} ({self.action})"

    def referenced_columns(self) -> tuple[str, ...]:
        """Columns of the checked table the rule names explicitly (expressions excluded)."""
        return tuple(dict.fromkeys(self.columns + self.order_by + self.partition_by))


@dataclass
class QualityResult:
    """What `apply` found: the checked tables, one ops.expectations row per rule, the failures."""

    tables: dict[str, DataFrame]
    results: list[dict] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)  # rows of each checked table (counted by the check)

    @property
    def ok(self) -> bool:
        """True when no `fail` rule failed."""
        return not self.failed


class ExpectationFailed(RuntimeError):
    """A `fail` rule failed; the message is one line naming table, rule and failing rows."""


# ---------------------------------------------------------------- loading and validation

def _fmt_num(x: float | None) -> str:
    if x is None:
        return ""
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def _default_name(kind: str, columns: tuple[str, ...], spec: Mapping) -> str:
    cols = ", ".join(columns)
    if kind == "range":
        return f"range({cols}: {_fmt_num(spec.get('min'))}..{_fmt_num(spec.get('max'))})"
    if kind == "monotonic":
        order = ", ".join(_str_list(spec.get("order_by"), "order_by"))
        within = ", ".join(_str_list(spec.get("partition_by") or [], "partition_by"))
        text = f"{spec.get('direction', 'non_increasing')}({cols} by {order}"
        return text + (f" within {within})" if within else ")")
    return f"{kind}({cols})"


def _str_list(value: Any, key: str) -> list[str]:
    """A column name or a list of them."""
    if isinstance(value, str) and value.strip():
        return [value.strip()]
    if isinstance(value, list) and value and all(isinstance(v, str) and v.strip() for v in value):
        return [v.strip() for v in value]
    raise ValueError(f"`{key}` must be a column name or a non-empty list of column names, got {value!r}")


def _number(value: Any, key: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"`{key}` must be a number, got {value!r}")
    return float(value)


def _parse_rule(table: str, spec: Any) -> Rule:
    """One YAML mapping -> Rule; raises ValueError with the problem (the caller adds where)."""
    if not isinstance(spec, Mapping):
        raise ValueError(f"a rule must be a mapping like {{rule: not_null, columns: [...], action: fail}}, got {spec!r}")
    kind = spec.get("rule")
    if kind not in KINDS:
        raise ValueError(f"unknown rule kind {kind!r} (kinds: {', '.join(KINDS)})")
    unknown = sorted(set(spec) - _KEYS[kind])
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(map(repr, unknown))} for rule {kind} "
                         f"(allowed: {', '.join(sorted(_KEYS[kind]))})")
    action = spec.get("action")
    if action not in ACTIONS:
        raise ValueError(f"`action` must be one of {', '.join(ACTIONS)}, got {action!r}")
    where = spec.get("where")
    if where is not None and (not isinstance(where, str) or not where.strip()):
        raise ValueError(f"`where` must be a non-empty SQL condition, got {where!r}")

    columns: tuple[str, ...] = ()
    if kind != "expression":
        if "column" in spec and "columns" in spec:
            raise ValueError("give `column` or `columns`, not both")
        if kind == "monotonic":
            if "column" not in spec:
                raise ValueError("`column` is required")
            columns = tuple(_str_list(spec["column"], "column"))
            if len(columns) != 1:
                raise ValueError("`column` must name one column")
        else:
            key = "columns" if "columns" in spec else "column"
            if key not in spec:
                raise ValueError("`columns` (or `column`) is required")
            columns = tuple(_str_list(spec[key], key))

    name = spec.get("name")
    if name is not None and (not isinstance(name, str) or not _NAME.match(name)):
        raise ValueError(f"`name` must be an identifier (letters, digits, _), got {name!r}")
    kw: dict[str, Any] = {}

    if kind == "accepted_values":
        values = spec.get("values")
        if not isinstance(values, list) or not values or not all(isinstance(v, (str, int, float, bool)) for v in values):
            raise ValueError(f"`values` must be a non-empty list of plain values, got {values!r}")
        kw["values"] = tuple(values)
        kw["allow_null"] = spec.get("allow_null", False)
    elif kind == "range":
        lo, hi = _number(spec.get("min"), "min"), _number(spec.get("max"), "max")
        if lo is None and hi is None:
            raise ValueError("`min` and/or `max` is required")
        if lo is not None and hi is not None and lo > hi:
            raise ValueError(f"`min` ({_fmt_num(lo)}) is greater than `max` ({_fmt_num(hi)})")
        kw.update(min=lo, max=hi, allow_null=spec.get("allow_null", True))
    elif kind == "expression":
        if name is None:
            raise ValueError("`name` is required for an expression rule")
        expr = spec.get("expr")
        if not isinstance(expr, str) or not expr.strip():
            raise ValueError(f"`expr` must be a non-empty SQL condition, got {expr!r}")
        kw["expr"] = expr.strip()
        join = spec.get("join")
        if isinstance(join, Mapping):
            # YAML 1.1 reads an unquoted `on:` key as the boolean true.
            join = {("on" if k is True else k): v for k, v in join.items()}
        if join is not None:
            if not isinstance(join, Mapping) or set(join) != {"table", "on"}:
                raise ValueError(f"`join` must be {{table: <layer.table>, on: [key columns]}}, got {join!r}")
            from lakehouse.tables import REGISTRY

            if join["table"] not in REGISTRY:
                raise ValueError(f"`join.table` {join['table']!r} is not a known table")
            if join["table"] == table:
                raise ValueError("`join.table` must be another table")
            kw["join"] = Join(join["table"], tuple(_str_list(join["on"], "join.on")))
    elif kind == "monotonic":
        direction = spec.get("direction", "non_increasing")
        if direction not in DIRECTIONS:
            raise ValueError(f"`direction` must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
        kw.update(direction=direction, order_by=tuple(_str_list(spec.get("order_by"), "order_by")),
                  partition_by=tuple(_str_list(spec["partition_by"], "partition_by")) if spec.get("partition_by") else ())
    if "allow_null" in kw and not isinstance(kw["allow_null"], bool):
        raise ValueError(f"`allow_null` must be true or false, got {kw['allow_null']!r}")

    return Rule(table=table, kind=kind, action=action, name=name or _default_name(kind, columns, spec),
                columns=columns, where=where.strip() if where else None, **kw)


def parse_rules(data: Any, source: str = "expectations") -> dict[str, list[Rule]]:
    """Validate already-loaded YAML data (a mapping of table -> list of rules)."""
    from lakehouse.tables import REGISTRY

    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ValueError(f"{source}: must be a mapping of table name -> list of rules")
    out: dict[str, list[Rule]] = {}
    for table, specs in data.items():
        if table not in REGISTRY:
            raise ValueError(f"{source}: unknown table {table!r} (use a registered name like gold.engagement_daily)")
        if not isinstance(specs, list):
            raise ValueError(f"{source}: {table}: expected a list of rules, got {type(specs).__name__}")
        rules: list[Rule] = []
        for i, spec in enumerate(specs, start=1):
            label = spec.get("name") or spec.get("rule") if isinstance(spec, Mapping) else None
            try:
                rule = _parse_rule(table, spec)
            except ValueError as exc:
                raise ValueError(f"{source}: {table} rule #{i}" + (f" ({label})" if label else "") + f": {exc}") from None
            if any(r.name == rule.name for r in rules):
                raise ValueError(f"{source}: {table} rule #{i}: duplicate rule name {rule.name!r} (give one a `name`)")
            rules.append(rule)
        out[table] = rules
    return out


def load_rules(path: str | Path | None = None) -> dict[str, list[Rule]]:
    """Read and validate an expectations file (default: config.expectations_path()).

    A bad rule raises ValueError naming the file, the table and the rule.
    """
    if path is None:
        from lakehouse.config import expectations_path

        path = expectations_path()
    path = Path(path)
    try:
        data = load_yaml(path.read_text())
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from None
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the expectations file ({exc.strerror})") from None
    return parse_rules(data, str(path))


# ---------------------------------------------------------------- evaluation

# Rules are turned into Spark SQL text, one expression string per rule: a column built through
# the Python Column API costs a py4j round trip per function call (and more with PySpark's
# call-site capture), and the ~200 rules of a gold run made thousands of them (docs/performance.md).

def _sql_lit(x: Any) -> str:
    """A plain YAML value as a Spark SQL literal of the type `F.lit` would give it."""
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, int):
        return str(x)  # INT, or BIGINT when out of INT's range (as F.lit)
    if isinstance(x, float):
        if math.isnan(x) or math.isinf(x):
            return f"CAST('{'NaN' if math.isnan(x) else ('-' if x < 0 else '') + 'Infinity'}' AS DOUBLE)"
        return f"{x!r}D"
    text = str(x).replace("\\", "\\\\").replace("'", "\\'")
    return f"'{text}'"


def _lit(x: float) -> str:
    """A bound as a literal: whole numbers as integers, so integer columns are not cast to double."""
    return _sql_lit(int(x)) if float(x).is_integer() else _sql_lit(float(x))


def _any(conds: list[str]) -> str:
    return "(" + " OR ".join(conds) + ")" if conds else "false"


def _fails(rule: Rule) -> str:
    """A never-null boolean SQL expression: true when the row fails the rule."""
    if rule.kind == "not_null":
        cond = _any([f"{quote_ident(c)} IS NULL" for c in rule.columns])
    elif rule.kind == "unique":
        cond = f"(count(1) OVER (PARTITION BY {', '.join(quote_ident(c) for c in rule.columns)}) > 1)"
    elif rule.kind == "accepted_values":
        values = ", ".join(_sql_lit(v) for v in rule.values)
        cond = _any([f"({quote_ident(c)} IS NULL AND {_sql_lit(not rule.allow_null)}) OR coalesce(NOT {quote_ident(c)} IN ({values}), false)"
                     for c in rule.columns])
    elif rule.kind == "range":
        parts = []
        for c in rule.columns:
            out = []
            if rule.min is not None:
                out.append(f"{quote_ident(c)} < {_lit(rule.min)}")
            if rule.max is not None:
                out.append(f"{quote_ident(c)} > {_lit(rule.max)}")
            parts.append(f"coalesce({_any(out)}, {_sql_lit(not rule.allow_null)})")
        cond = _any(parts)
    elif rule.kind == "expression":
        cond = f"coalesce(NOT ({rule.expr}), false)"
    elif rule.kind == "monotonic":
        over = f"ORDER BY {', '.join(quote_ident(c) for c in rule.order_by)}"
        if rule.partition_by:
            over = f"PARTITION BY {', '.join(quote_ident(c) for c in rule.partition_by)} {over}"
        value = quote_ident(rule.columns[0])
        cond = f"coalesce({value} {'>' if rule.direction == 'non_increasing' else '<'} lag({value}) OVER ({over}), false)"
    else:  # pragma: no cover - load_rules rejects other kinds
        raise ValueError(f"unknown rule kind {rule.kind}")
    if rule.where and rule.kind in ("not_null", "accepted_values", "range", "expression"):
        cond = f"(coalesce({rule.where}, false) AND {cond})"
    return cond


def _sample(rule: Rule, key: tuple[str, ...], columns: list[str]) -> str:
    """`col=value, ...` for a failing row (SQL): the table key, then the rule's own columns."""
    cols = [c for c in dict.fromkeys(key + (rule.columns if rule.kind != "expression" else ())) if c in columns]
    parts = [f"concat({_sql_lit(c + '=')}, coalesce(CAST({quote_ident(c)} AS STRING), 'null'))" for c in cols]
    return f"concat_ws(', ', {', '.join(parts)})" if parts else "CAST(NULL AS STRING)"


def _table_key(rules: list[Rule], columns: list[str]) -> tuple[str, ...]:
    """The table's grain for sample keys: the columns of its first unique rule, else its first column."""
    return next((r.columns for r in rules if r.kind == "unique"), tuple(columns[:1]))


def _short(name: str) -> str:
    return name.split(".", 1)[1]


@dataclass
class _Outcome:
    rule: Rule
    failing_rows: int | None = None
    detail: str = ""
    skipped: bool = False
    error: bool = False  # the rule could not be evaluated (missing column): counts as failed


def _plan_table(name: str, df: DataFrame, rules: list[Rule], tables: Mapping[str, DataFrame], single: bool):
    """(flagged frame, [(rule, flag column name)], [outcomes decided without Spark]).

    `single`: check the table in one partition, so that windows, joins and the final aggregation
    need no shuffle (one Spark stage; for small tables).
    """
    columns = df.columns
    if single:
        df = one_partition(df)
    decided: list[_Outcome] = []
    plain: list[tuple[Rule, str]] = []
    joined: list[tuple[Rule, str]] = []
    for i, rule in enumerate(rules):
        flag = f"__q{i}"
        missing = [c for c in rule.referenced_columns() if c not in columns]
        if rule.join is not None:
            if rule.join.table not in tables:
                decided.append(_Outcome(rule, skipped=True, detail=f"skipped: joined table {rule.join.table} not given"))
                continue
            missing += [c for c in rule.join.on if c not in columns]
            missing += [f"{rule.join.table}.{c}" for c in rule.join.on if c not in tables[rule.join.table].columns]
        if missing:
            decided.append(_Outcome(rule, error=True, detail=f"missing column(s): {', '.join(missing)}"))
            continue
        (joined if rule.join is not None else plain).append((rule, flag))

    # Stage 1: every rule on the table itself, in one select (windows included).
    checked = _checked_select(df, columns, plain, decided, name)
    # Stage 2: join rules, each other table joined once per key (deduplicated on it: a left join
    # must not duplicate the checked table's rows; that table's own unique rule reports duplicates).
    if joined:
        cur = checked.alias(_short(name))
        seen: set[tuple[str, tuple[str, ...]]] = set()
        for rule, _ in joined:
            key = (rule.join.table, rule.join.on)
            if key in seen:
                continue
            seen.add(key)
            other = tables[rule.join.table]
            if single:
                # Both sides in one partition: a sort-merge join needs no shuffle and no broadcast job.
                other = one_partition(other).hint("merge")
            other = other.dropDuplicates(list(rule.join.on)).alias(_short(rule.join.table))
            cur = cur.join(other, list(rule.join.on), "left")
        keep = [f"{quote_ident(_short(name))}.{quote_ident(c)}" for c in checked.columns]
        checked = _checked_select(cur, columns, joined, decided, name, keep=keep)
    done = {o.rule.name for o in decided}
    flags = [(r, f) for r, f in plain + joined if r.name not in done]
    return checked, flags, decided


def _checked_select(df: DataFrame, columns: list[str], rules: list[tuple[Rule, str]], decided: list[_Outcome],
                    table: str, keep: list[str] | None = None) -> DataFrame:
    """df + one boolean column per rule; a rule whose SQL does not resolve becomes an outcome instead."""
    base = keep if keep is not None else [quote_ident(c) for c in columns]
    todo = list(rules)
    while True:
        try:
            return df.selectExpr(*base, *[f"{_fails(r)} AS {f}" for r, f in todo])
        except AnalysisException:
            if not todo:
                raise
        # Find the culprit(s) one by one (only on the error path).
        still = []
        for rule, flag in todo:
            try:
                df.selectExpr(f"{_fails(rule)} AS {flag}")
                still.append((rule, flag))
            except AnalysisException as exc:
                decided.append(_bad_sql(table, rule, exc))
        if len(still) == len(todo):  # pragma: no cover - the combination fails, no single rule does
            raise
        todo = still


def _bad_sql(table: str, rule: Rule, exc: AnalysisException) -> _Outcome:
    """An unresolved column is a failed rule; any other SQL error is a bad rule (ValueError)."""
    text = str(exc)
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    m = re.search(r"UNRESOLVED_COLUMN.*?name `([^`]+)`", text, re.S)
    if m:
        return _Outcome(rule, error=True, detail=f"missing column(s): {m.group(1)}")
    raise ValueError(f"expectations: {table} rule {rule.name}: invalid SQL: {first[:300]}") from None


def _aggregations(name: str, df: DataFrame, rules: list[Rule], tables: Mapping[str, DataFrame],
                  single: bool) -> tuple[DataFrame, list, dict, DataFrame | None]:
    """One table's checks as a one-row frame (`table`, `counts` as JSON: `__rows` and each rule's
    failing rows, `<flag>_n`), before anything runs. Sample rows are asked for afterwards, only
    for the rules that failed (`_sample_aggregations`).

    Returns (that frame or None when no rule needs Spark, the flagged rules, outcomes decided
    without Spark, the checked frame with one boolean column per rule).
    """
    checked, flags, decided = _plan_table(name, df, rules, tables, single)
    outcomes = {o.rule.name: o for o in decided}
    if not flags:
        return None, flags, outcomes, checked
    aggs = ["count(1) AS __rows"] + [f"sum(CASE WHEN {flag} THEN 1 ELSE 0 END) AS {flag}_n" for _, flag in flags]
    return _one_row(name, checked, aggs), flags, outcomes, checked


def _one_row(name: str, df: DataFrame, aggs: list[str]) -> DataFrame:
    """`aggs` (SQL aggregates) over `df` as one row: `table` (the name) and `counts` (JSON)."""
    return df.selectExpr(*aggs).selectExpr(f"{_sql_lit(name)} AS table", "to_json(struct(*)) AS counts")


def _sample_aggregations(name: str, checked: DataFrame, columns: list[str], rules: list[Rule],
                         failing: list[tuple[Rule, str]], samples: int) -> DataFrame:
    """Sample rows of the rules that failed (`failing`: rule, flag column), as a one-row frame.

    The smallest and largest failing row's `_sample` text, and with `samples` > 2 the one with the
    smallest hash (a stable pick from the middle). Asked only for rules that failed: string
    aggregates cannot run as Spark's hash aggregation, and over every rule of every table they
    were half of the whole check (docs/performance.md, "Samples only for failing rules").
    """
    key = _table_key(rules, columns)
    aggs = []
    for rule, flag in failing:
        s = f"CASE WHEN {flag} THEN {_sample(rule, key, columns)} END"
        aggs += [f"min({s}) AS {flag}_lo", f"max({s}) AS {flag}_hi"]
        if samples > 2:
            aggs.append(f"min_by({s}, CASE WHEN {flag} THEN xxhash64({s}) END) AS {flag}_mid")
    return _one_row(name, checked, aggs)


def _outcomes(row: dict, flags: list, outcomes: dict, samples: int) -> None:
    """Fill `outcomes` from a table's counts row (JSON leaves out null fields)."""
    total = row.get("__rows", 0)
    for rule, flag in flags:
        n = int(row.get(f"{flag}_n") or 0)
        if n == 0:
            detail = f"0 of {total} rows"
        else:
            picks = [row.get(f"{flag}_lo")] + ([row.get(f"{flag}_mid")] if samples > 2 else []) + [row.get(f"{flag}_hi")]
            shown = list(dict.fromkeys(p for p in picks if p))[:samples]
            detail = f"{n} of {total} rows" + (f"; e.g. {SAMPLE_SEPARATOR.join(shown)}" if shown else "")
        outcomes[rule.name] = _Outcome(rule, failing_rows=n, detail=detail)


def _without_dropped(checked: DataFrame, columns: list[str], flags: list, outcomes: dict) -> DataFrame | None:
    """The table without the failing rows of `drop` rules that failed (None: nothing to drop)."""
    drops = [F.col(f) for r, f in flags if r.action == "drop" and outcomes[r.name].failing_rows]
    if not drops:
        return None
    bad = drops[0]
    for d in drops[1:]:
        bad = bad | d
    return checked.filter(~bad).select(*[F.col(f"`{c}`") for c in columns])


def _union_all(frames: list[DataFrame]) -> DataFrame:
    """The one-row check frames (all `table`, `counts`, in that order) as one frame, unioned as a
    balanced tree: every union re-analyses the plan it builds, so a left-deep chain of 24 cost
    about three times the analysis of a tree (docs/performance.md)."""
    while len(frames) > 1:
        frames = [frames[i].union(frames[i + 1]) if i + 1 < len(frames) else frames[i] for i in range(0, len(frames), 2)]
    return frames[0]


def apply(tables: Mapping[str, DataFrame], rules: Mapping[str, list[Rule]], run_id: str,
          samples: int = 3, checked_at: dt.datetime | None = None,
          single_partition_layers: tuple[str, ...] = ("gold",)) -> QualityResult:
    """Check every rule against the given tables (keyed "gold.engagement_daily" etc.).

    Rules of a table not in `tables` (or joining one that is not) are reported as skipped. Each
    rule is evaluated on the table as given (before any `drop`). Every table's rules are counted
    in one aggregation, and the aggregations of all tables run as one Spark job (a union of
    one-row frames). Tables of `single_partition_layers` are checked in one partition (no
    shuffle). Returns the tables with the failing rows of `drop` rules removed (a lazy filter
    of the given frame), one ops.expectations row per rule (in file order), and the `fail` rules
    that failed (`result.ok` is False then).
    """
    checked_at = checked_at or dt.datetime.now(dt.timezone.utc)
    result = QualityResult(tables=dict(tables))
    names = [n for n in rules if rules[n]]
    planned = {}
    for name in names:
        if name in tables:
            single = name.split(".", 1)[0] in single_partition_layers
            planned[name] = _aggregations(name, tables[name], list(rules[name]), tables, single)
    frames = [p[0] for p in planned.values() if p[0] is not None]
    if frames:
        found = {r["table"]: json.loads(r["counts"]) for r in _union_all(frames).collect()}
        # A second job only when a rule failed: the failing rules' sample rows.
        failing = {t: [(r, f) for r, f in planned[t][1] if int(c.get(f"{f}_n") or 0) > 0] for t, c in found.items()}
        picks = [_sample_aggregations(t, planned[t][3], tables[t].columns, list(rules[t]), fs, samples) for t, fs in failing.items() if fs]
        if picks and samples > 0:
            for r in _union_all(picks).collect():
                found[r["table"]].update(json.loads(r["counts"]))
        for table, counts in found.items():
            _, flags, outcomes, _ = planned[table]
            result.rows[table] = int(counts.get("__rows", 0))
            _outcomes(counts, flags, outcomes, samples)

    for name in names:
        if name not in tables:
            outcomes = {r.name: _Outcome(r, skipped=True, detail=f"skipped: table {name} not given") for r in rules[name]}
        else:
            _, flags, outcomes, checked = planned[name]
            dropped = _without_dropped(checked, tables[name].columns, flags, outcomes)
            if dropped is not None:
                result.tables[name] = dropped
        for r in rules[name]:
            o = outcomes[r.name]
            failed = o.error or bool(o.failing_rows)
            if o.skipped:
                result.skipped.append(r.description)
            elif failed and r.action == "fail":
                rows = "rule could not be checked" if o.failing_rows is None else \
                    f"{o.failing_rows} failing row{'s' if o.failing_rows != 1 else ''}"
                result.failed.append(f"{r.description}: {rows}" + (f" ({o.detail})" if o.error else ""))
            result.results.append({
                "run_id": run_id, "checked_at": checked_at, "table_name": name, "rule": r.name,
                "action": r.action, "failing_rows": o.failing_rows,
                "passed": None if o.skipped else not failed, "detail": o.detail,
            })
    return result


def raise_on_failure(result: QualityResult) -> None:
    """Raise ExpectationFailed (one line: table, rule, failing rows) when a `fail` rule failed."""
    if result.ok:
        return
    more = len(result.failed) - 1
    raise ExpectationFailed("expectation failed: " + result.failed[0]
                            + (f" (and {more} more failed rule{'s' if more > 1 else ''})" if more else ""))
