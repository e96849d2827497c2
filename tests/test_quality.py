"""Data-quality rules (lakehouse.quality) on tiny inline frames with hand-computed results."""

from __future__ import annotations

import datetime as dt
import re
import textwrap
from pathlib import Path

import pyspark.sql.functions as F
import pytest

from lakehouse import quality as Q

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "conf" / "base" / "expectations.yaml"
D = dt.date


def rules(text: str) -> dict[str, list[Q.Rule]]:
    """Rules from inline YAML, through the same validation as the shipped file."""
    import yaml

    return Q.parse_rules(yaml.safe_load(textwrap.dedent(text)), "inline")


def by_rule(result: Q.QualityResult) -> dict[str, dict]:
    return {r["rule"]: r for r in result.results}


def daily(spark, rows):
    return spark.createDataFrame(rows, "activity_date date, dau long, wau long, mau long, stickiness double")


GOOD_DAILY = [(D(2026, 1, 1), 2, 2, 2, 1.0), (D(2026, 1, 2), 1, 2, 2, 0.5), (D(2026, 1, 3), 0, 2, 2, 0.0)]


# ---------------------------------------------------------------- each rule kind

def test_every_rule_kind_passes_on_good_data(spark):
    r = rules("""
        gold.funnel_daily:
          - {rule: not_null, columns: [activity_date, step_index], action: fail}
          - {rule: unique, columns: [activity_date, device, step_index], action: fail}
          - {rule: accepted_values, column: device, values: [mobile, web], allow_null: true, action: fail}
          - {rule: accepted_values, column: step_name, values: [item_view, add_to_cart], action: fail}
          - {rule: range, column: users, min: 0, max: 10, action: fail}
          - {rule: range, name: ratio, column: ratio, min: 0, max: 1, action: fail}
          - {rule: expression, name: users_positive_on_step_1, expr: "users > 0", where: "step_index = 1", action: fail}
          - {rule: monotonic, column: users, order_by: step_index, partition_by: [activity_date, device], action: fail}
    """)
    d1 = D(2026, 1, 1)
    df = spark.createDataFrame(
        [(d1, "web", 1, "item_view", 10, 1.0), (d1, "web", 2, "add_to_cart", 10, 0.0),
         (d1, None, 1, "item_view", 3, None), (d1, None, 2, "add_to_cart", 0, 0.5)],
        "activity_date date, device string, step_index int, step_name string, users long, ratio double")
    res = Q.apply({"gold.funnel_daily": df}, r, "t")
    assert res.ok and res.failed == [] and res.skipped == []
    assert [(x["rule"], x["failing_rows"], x["passed"]) for x in res.results] == [(x.name, 0, True) for x in r["gold.funnel_daily"]]
    assert all(x["detail"] == "0 of 4 rows" for x in res.results)
    assert res.tables["gold.funnel_daily"] is df


def test_rule_values_and_bounds_are_matched_exactly_as_written_in_the_yaml(spark):
    # Rules become Spark SQL text: quotes, backslashes, fractions and numbers beyond INT must
    # keep their meaning (a value matches only itself, a bound is the number written).
    r = rules(r"""
        gold.users:
          - {rule: accepted_values, name: odd_names, column: name, values: ["it's", 'a\b', "tab\t", "x"], action: warn}
          - {rule: range, name: half_to_big, column: n, min: 0.5, max: 3000000000, action: warn}
          - {rule: accepted_values, name: flags, column: flag, values: [true], allow_null: true, action: warn}
    """)
    df = spark.createDataFrame(
        [("it's", 0.5, True), ("a\\b", 3000000000.0, None), ("tab\\t", 0.49, False), ("its", 3000000000.5, True),
         ("a\\\\b", 1.0, True), ("x", None, True)],
        "name string, n double, flag boolean")
    got = {k: v["failing_rows"] for k, v in by_rule(Q.apply({"gold.users": df}, r, "t")).items()}
    assert got == {"odd_names": 3, "half_to_big": 2, "flags": 1}  # "its", a\\b and tab\t (not a tab)


def test_not_null_passes_on_good_data_and_counts_rows_with_any_null(spark):
    r = rules("""
        gold.engagement_daily:
          - {rule: not_null, columns: [activity_date, dau], action: warn}
    """)
    bad = daily(spark, [(None, 1, 1, 1, 1.0), (D(2026, 1, 2), None, 1, 1, 1.0), (None, None, 1, 1, 1.0), (D(2026, 1, 4), 1, 1, 1, 1.0)])
    row = by_rule(Q.apply({"gold.engagement_daily": bad}, r, "t"))["not_null(activity_date, dau)"]
    assert (row["failing_rows"], row["passed"]) == (3, False)


def test_unique_counts_every_row_of_a_duplicated_key_and_null_keys_compare_equal(spark):
    r = rules("""
        gold.engagement_daily:
          - {rule: unique, columns: [activity_date], action: warn}
    """)
    bad = daily(spark, [(D(2026, 1, 1), 1, 1, 1, 1.0), (D(2026, 1, 1), 2, 2, 2, 1.0), (D(2026, 1, 2), 1, 1, 1, 1.0),
                        (None, 1, 1, 1, 1.0), (None, 1, 1, 1, 1.0)])
    row = by_rule(Q.apply({"gold.engagement_daily": bad}, r, "t"))["unique(activity_date)"]
    assert row["failing_rows"] == 4                      # both 2026-01-01 rows and both null-key rows
    assert "activity_date=2026-01-01" in row["detail"] and "activity_date=null" in row["detail"]


def test_accepted_values_counts_other_values_and_nulls_unless_allow_null(spark):
    df = spark.createDataFrame([("female",), ("male",), ("Female",), ("x",), (None,)], "gender string")
    strict = rules("""
        gold.demographics:
          - {rule: accepted_values, column: gender, values: [female, male, other, unknown], action: warn}
    """)
    lenient = rules("""
        gold.demographics:
          - {rule: accepted_values, column: gender, values: [female, male, other, unknown], allow_null: true, action: warn}
    """)
    assert by_rule(Q.apply({"gold.demographics": df}, strict, "t"))["accepted_values(gender)"]["failing_rows"] == 3
    row = by_rule(Q.apply({"gold.demographics": df}, lenient, "t"))["accepted_values(gender)"]
    assert row["failing_rows"] == 2
    assert "gender=Female" in row["detail"] and "gender=x" in row["detail"]   # samples show the offending value


def test_range_counts_values_outside_inclusive_bounds_and_lets_nulls_pass(spark):
    r = rules("""
        gold.engagement_daily:
          - {rule: range, column: stickiness, min: 0, max: 1, action: warn}
          - {rule: range, columns: [dau, wau], min: 0, action: warn}
    """)
    bad = daily(spark, [(D(2026, 1, 1), 1, 1, 1, 0.0), (D(2026, 1, 2), 1, 1, 1, 1.0),     # bounds are inclusive
                        (D(2026, 1, 3), 1, 1, 1, 1.5), (D(2026, 1, 4), 1, 1, 0, None),    # null passes
                        (D(2026, 1, 5), -1, -2, 1, -0.1)])                                 # one row, two columns
    got = by_rule(Q.apply({"gold.engagement_daily": bad}, r, "t"))
    assert got["range(stickiness: 0..1)"]["failing_rows"] == 2
    assert got["range(dau, wau: 0..)"]["failing_rows"] == 1
    assert "activity_date=2026-01-03, stickiness=1.5" in got["range(stickiness: 0..1)"]["detail"]


def test_expression_fails_only_on_false_rows_and_where_limits_the_rows_checked(spark):
    r = rules("""
        gold.engagement_daily:
          - {rule: expression, name: wau_at_least_dau, expr: "wau >= dau AND mau >= wau", action: warn}
          - {rule: expression, name: stickiness_when_mau, expr: "stickiness IS NOT NULL", where: "mau > 0", action: warn}
    """)
    bad = daily(spark, [(D(2026, 1, 1), 3, 2, 2, 1.0),      # wau < dau
                        (D(2026, 1, 2), 1, 2, 1, None),     # mau < wau, stickiness null with mau > 0
                        (D(2026, 1, 3), None, 1, 1, 1.0),   # NULL >= 1 is not false: passes
                        (D(2026, 1, 4), 0, 0, 0, None)])    # mau = 0: outside `where`, passes
    got = by_rule(Q.apply({"gold.engagement_daily": bad}, r, "t"))
    assert got["wau_at_least_dau"]["failing_rows"] == 2
    assert got["stickiness_when_mau"]["failing_rows"] == 1


def test_monotonic_funnel_users_non_increasing_by_step_within_date_and_device(spark):
    r = rules("""
        gold.funnel_daily:
          - {rule: unique, columns: [activity_date, device, step_index], action: warn}
          - {rule: monotonic, name: users_non_increasing_by_step, column: users, order_by: step_index,
             partition_by: [activity_date, device], direction: non_increasing, action: warn}
    """)
    d1, d2 = D(2026, 1, 1), D(2026, 1, 2)
    rows = [(d1, "web", 1, 10), (d1, "web", 2, 5), (d1, "web", 3, 5), (d1, "web", 4, 0),
            (d1, "mobile", 1, 3), (d1, "mobile", 2, 4), (d1, "mobile", 3, 1), (d1, "mobile", 4, 2),  # 2 breaks
            (d2, "web", 1, 1), (d2, "web", 2, 7)]                     # would look fine if dates were mixed
    df = spark.createDataFrame(rows, "activity_date date, device string, step_index int, users long")
    row = by_rule(Q.apply({"gold.funnel_daily": df}, r, "t"))["users_non_increasing_by_step"]
    assert row["failing_rows"] == 3
    assert "device=mobile, step_index=2" in row["detail"]


# ---------------------------------------------------------------- actions

def test_drop_removes_exactly_the_failing_rows_and_leaves_other_tables_alone(spark):
    r = rules("""
        gold.demographics:
          - {rule: accepted_values, column: gender, values: [female, male, other, unknown], action: drop}
          - {rule: range, column: users, min: 0, action: drop}
          - {rule: unique, columns: [gender], action: warn}
    """)
    df = spark.createDataFrame([("female", 3), ("male", -1), ("robot", 2), ("other", 1), ("robot", -5), ("unknown", 4)],
                               "gender string, users long")
    other = daily(spark, GOOD_DAILY)
    res = Q.apply({"gold.demographics": df, "gold.engagement_daily": other}, r, "t")
    assert sorted(tuple(x) for x in res.tables["gold.demographics"].collect()) == [("female", 3), ("other", 1), ("unknown", 4)]
    assert res.tables["gold.demographics"].columns == ["gender", "users"]
    assert res.tables["gold.engagement_daily"] is other
    got = by_rule(res)
    assert (got["accepted_values(gender)"]["failing_rows"], got["range(users: 0..)"]["failing_rows"]) == (2, 2)
    assert got["unique(gender)"]["failing_rows"] == 2      # every rule sees the table as given (before drops)
    assert res.ok and res.failed == []                     # drop and warn never fail the run


def test_fail_makes_ok_false_and_raise_on_failure_names_table_rule_and_rows_in_one_line(spark):
    r = rules("""
        gold.engagement_daily:
          - {rule: expression, name: wau_at_least_dau, expr: "wau >= dau AND mau >= wau", action: fail}
          - {rule: unique, columns: [activity_date], action: fail}
    """)
    bad = daily(spark, [(D(2026, 1, 1), 3, 2, 2, 1.0), (D(2026, 1, 2), 5, 1, 1, 1.0), (D(2026, 1, 3), 1, 1, 1, 1.0)])
    res = Q.apply({"gold.engagement_daily": bad}, r, "t")
    assert not res.ok
    assert res.failed == ["gold.engagement_daily: wau_at_least_dau (fail): 2 failing rows"]
    assert res.tables["gold.engagement_daily"] is bad      # fail never edits the table
    with pytest.raises(Q.ExpectationFailed) as exc:
        Q.raise_on_failure(res)
    message = str(exc.value)
    assert "\n" not in message
    assert "gold.engagement_daily" in message and "wau_at_least_dau" in message and "2 failing rows" in message
    Q.raise_on_failure(Q.QualityResult(tables={}))      # ok: no raise


def test_warn_records_the_failure_but_keeps_every_row_and_the_run_ok(spark):
    r = rules("""
        silver.events:
          - {rule: accepted_values, column: device, values: [mobile, web, tablet, desktop], allow_null: true, action: warn}
    """)
    df = spark.createDataFrame([("e1", "web"), ("e2", "phone"), ("e3", None)], "event_id string, device string")
    res = Q.apply({"silver.events": df}, r, "run-7")
    assert res.ok and res.tables["silver.events"] is df
    row = res.results[0]
    assert (row["run_id"], row["table_name"], row["action"], row["failing_rows"], row["passed"]) == \
        ("run-7", "silver.events", "warn", 1, False)
    assert row["detail"] == "1 of 3 rows; e.g. event_id=e2, device=phone"


def test_lifecycle_sums_to_dau_catches_a_broken_row_and_passes_the_null_first_date(spark):
    r = {"gold.lifecycle_daily": [x for x in Q.load_rules(SHIPPED)["gold.lifecycle_daily"] if x.name == "lifecycle_sums_to_dau"]}
    eng = spark.createDataFrame([(D(2026, 1, 1), 3), (D(2026, 1, 2), 4), (D(2026, 1, 3), 2)], "activity_date date, dau long")
    schema = "activity_date date, new long, returning long, resurrecting long, dormant long"
    good = spark.createDataFrame([(D(2026, 1, 1), None, None, None, None), (D(2026, 1, 2), 1, 2, 1, 1),
                                  (D(2026, 1, 3), 0, 2, 0, 2)], schema)
    res = Q.apply({"gold.lifecycle_daily": good, "gold.engagement_daily": eng}, r, "t")
    assert res.ok and res.results[0]["failing_rows"] == 0
    broken = spark.createDataFrame([(D(2026, 1, 1), None, None, None, None), (D(2026, 1, 2), 1, 2, 2, 1),
                                    (D(2026, 1, 3), 0, 2, 0, 2)], schema)
    res = Q.apply({"gold.lifecycle_daily": broken, "gold.engagement_daily": eng}, r, "t")
    assert not res.ok
    assert res.results[0]["failing_rows"] == 1 and "activity_date=2026-01-02" in res.results[0]["detail"]
    assert res.tables["gold.lifecycle_daily"].count() == 3     # the join never duplicates or loses rows


def test_rules_of_absent_tables_and_joins_on_absent_tables_are_skipped_not_failed(spark):
    r = Q.load_rules(SHIPPED)
    lifecycle = spark.createDataFrame([(D(2026, 1, 1), None, None, None, None)],
                                      "activity_date date, new long, returning long, resurrecting long, dormant long")
    res = Q.apply({"gold.lifecycle_daily": lifecycle}, {k: r[k] for k in ("gold.lifecycle_daily", "gold.users")}, "t")
    assert res.ok
    got = by_rule(res)
    assert got["lifecycle_sums_to_dau"]["passed"] is None and got["lifecycle_sums_to_dau"]["failing_rows"] is None
    assert got["lifecycle_sums_to_dau"]["detail"] == "skipped: joined table gold.engagement_daily not given"
    assert got["unique(activity_date)"]["passed"] is True
    users = [x for x in res.results if x["table_name"] == "gold.users"]
    assert users and all(x["passed"] is None and x["detail"] == "skipped: table gold.users not given" for x in users)
    assert len(res.skipped) == len(users) + 1


def test_a_rule_on_a_missing_column_fails_with_its_action_and_says_which_column(spark):
    r = rules("""
        gold.users:
          - {rule: not_null, columns: [user_id], action: fail}
          - {rule: accepted_values, column: segment, values: [new], action: fail}
          - {rule: expression, name: uses_cluster, expr: "cluster >= 0", action: warn}
    """)
    res = Q.apply({"gold.users": spark.createDataFrame([("u1",)], "user_id string")}, r, "t")
    got = by_rule(res)
    assert got["not_null(user_id)"]["passed"] is True
    assert (got["accepted_values(segment)"]["passed"], got["accepted_values(segment)"]["detail"]) == (False, "missing column(s): segment")
    assert got["uses_cluster"]["passed"] is False and "cluster" in got["uses_cluster"]["detail"]
    assert res.failed == ["gold.users: accepted_values(segment) (fail): rule could not be checked (missing column(s): segment)"]


def test_invalid_sql_in_an_expression_raises_value_error_naming_table_and_rule(spark):
    r = rules("""
        gold.engagement_daily:
          - {rule: expression, name: broken_sql, expr: "dau >= (", action: fail}
    """)
    with pytest.raises(ValueError, match=r"gold\.engagement_daily rule broken_sql: invalid SQL"):
        Q.apply({"gold.engagement_daily": daily(spark, GOOD_DAILY)}, r, "t")


def test_results_have_the_ops_expectations_shape_and_append_to_the_ops_table(spark, tmp_path):
    from lakehouse import ops
    from lakehouse.tables import Lake

    r = rules("""
        gold.engagement_daily:
          - {rule: unique, columns: [activity_date], action: fail}
        gold.users:
          - {rule: unique, columns: [user_id], action: fail}
    """)
    res = Q.apply({"gold.engagement_daily": daily(spark, GOOD_DAILY)}, r, "run-1")
    names = [f.name for f in ops.SCHEMAS["ops.expectations"]]
    assert all(list(row) == names for row in res.results)
    assert len({row["checked_at"] for row in res.results}) == 1 and res.results[0]["checked_at"].tzinfo is not None
    lake = Lake(str(tmp_path))
    ops.append(lake, "ops.expectations", res.results)
    back = sorted(ops.read(lake, "ops.expectations"), key=lambda x: x["table_name"])
    assert [(x["table_name"], x["rule"], x["failing_rows"], x["passed"]) for x in back] == [
        ("gold.engagement_daily", "unique(activity_date)", 0, True),
        ("gold.users", "unique(user_id)", None, None),
    ]


def test_all_rules_of_a_table_share_one_spark_job(spark):
    """Ten row-level rules cost the same Spark jobs as one (one aggregation, not one job per rule)."""
    df = daily(spark, GOOD_DAILY)
    one = rules("""
        gold.engagement_daily:
          - {rule: not_null, columns: [dau], action: warn}
    """)
    many = rules("""
        gold.engagement_daily:
          - {rule: not_null, columns: [dau], action: warn}
          - {rule: not_null, columns: [wau], action: warn}
          - {rule: not_null, columns: [mau], action: warn}
          - {rule: range, columns: [dau, wau, mau], min: 0, action: warn}
          - {rule: range, column: stickiness, min: 0, max: 1, action: warn}
          - {rule: expression, name: a, expr: "wau >= dau", action: warn}
          - {rule: expression, name: b, expr: "mau >= wau", action: warn}
          - {rule: expression, name: c, expr: "dau >= 0", where: "mau > 0", action: warn}
          - {rule: accepted_values, column: dau, values: [0, 1, 2], action: warn}
          - {rule: not_null, columns: [activity_date], action: warn}
    """)
    sc = spark.sparkContext
    tracker = sc.statusTracker()

    def jobs(r, group):
        sc.setJobGroup(group, "quality job count")
        try:
            Q.apply({"gold.engagement_daily": df}, r, "t")
        finally:
            sc.setLocalProperty("spark.jobGroup.id", None)
        return len(tracker.getJobIdsForGroup(group))

    n_one, n_many = jobs(one, "quality-one"), jobs(many, "quality-many")
    assert n_one == n_many
    assert n_many <= 2


def test_sample_rows_are_asked_only_for_failing_rules_so_a_clean_check_is_one_job(spark):
    """Counts first (one job); the failing rules' sample rows in one more job, only when a rule failed."""
    r = rules("""
        gold.engagement_daily:
          - {rule: not_null, name: dau_given, columns: [dau], action: warn}
          - {rule: expression, name: wau_at_least_dau, expr: "wau >= dau", action: warn}
        gold.revenue_daily:
          - {rule: range, name: revenue_not_negative, column: revenue, min: 0, action: warn}
    """)
    revenue = spark.createDataFrame([(D(2026, 1, 1), 5.0), (D(2026, 1, 2), 7.5)], "activity_date date, revenue double")
    bad = daily(spark, [(D(2026, 1, 1), 3, 2, 3, 1.0), (D(2026, 1, 2), 1, 2, 2, 0.5), (D(2026, 1, 3), 4, 1, 4, 1.0)])
    sc = spark.sparkContext
    tracker = sc.statusTracker()

    def check(daily_frame, group):
        sc.setJobGroup(group, "quality job count")
        try:
            res = Q.apply({"gold.engagement_daily": daily_frame, "gold.revenue_daily": revenue}, r, "t")
        finally:
            sc.setLocalProperty("spark.jobGroup.id", None)
        return by_rule(res), len(tracker.getJobIdsForGroup(group))

    clean, clean_jobs = check(daily(spark, GOOD_DAILY), "quality-clean")
    failing, failing_jobs = check(bad, "quality-failing")
    assert [clean[n]["detail"] for n in ("dau_given", "wau_at_least_dau")] == ["0 of 3 rows", "0 of 3 rows"]
    assert failing["dau_given"]["detail"] == "0 of 3 rows"
    assert failing["wau_at_least_dau"]["detail"] == "2 of 3 rows; e.g. activity_date=2026-01-01; activity_date=2026-01-03"
    assert failing["revenue_not_negative"]["detail"] == clean["revenue_not_negative"]["detail"] == "0 of 2 rows"
    assert (clean_jobs, failing_jobs) == (1, 2)


# ---------------------------------------------------------------- the shipped rules file

def _contract_gold_grains() -> dict[str, list[str]]:
    """gold table -> grain (key) columns, from the gold table of docs/contracts.md."""
    text = (ROOT / "docs" / "contracts.md").read_text()
    section = text.split("## gold", 1)[1].split("\n## ", 1)[0]
    out = {}
    for line in section.splitlines():
        m = re.match(r"\|\s*`(\w+)`\s*\|\s*([^|]+)\|", line)
        if m:
            out[f"gold.{m.group(1)}"] = [c.strip() for c in m.group(2).replace("`", "").split(",")]
    return out


def test_shipped_expectations_load_and_name_only_tables_of_the_registry_and_contracts():
    from lakehouse.tables import REGISTRY

    shipped = Q.load_rules(SHIPPED)
    contracts = (ROOT / "docs" / "contracts.md").read_text()
    assert shipped
    for table, table_rules in shipped.items():
        assert table in REGISTRY, table
        layer, name = table.split(".", 1)
        assert f"`{table}`" in contracts or (layer == "gold" and f"`{name}`" in contracts), table
        assert table_rules, table


def test_every_gold_table_of_the_contract_has_not_null_and_unique_rules_on_its_grain():
    from lakehouse.tables import REGISTRY

    grains = _contract_gold_grains()
    assert set(grains) == {t for t in REGISTRY if t.startswith("gold.")}
    shipped = Q.load_rules(SHIPPED)
    for table, key in grains.items():
        table_rules = shipped.get(table, [])
        assert any(r.kind == "unique" and list(r.columns) == key and r.action == "fail" for r in table_rules), table
        assert any(r.kind == "not_null" and list(r.columns) == key and r.action == "fail" for r in table_rules), table


def test_expectations_path_prefers_conf_local(tmp_path):
    from lakehouse.config import expectations_path

    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "expectations.yaml").write_text("gold.users: []\n")
    assert Q.load_rules(expectations_path(tmp_path)) == {"gold.users": []}
    (tmp_path / "local").mkdir()
    (tmp_path / "local" / "expectations.yaml").write_text(
        "gold.users:\n  - {rule: unique, columns: [user_id], action: warn}\n")
    assert [r.name for r in Q.load_rules(expectations_path(tmp_path))["gold.users"]] == ["unique(user_id)"]


@pytest.mark.parametrize("text, message", [
    ("gold.nope:\n  - {rule: unique, columns: [x], action: fail}", r"unknown table 'gold\.nope'"),
    ("gold.users:\n  - {rule: uniq, columns: [user_id], action: fail}", r"gold\.users rule #1 \(uniq\): unknown rule kind 'uniq'"),
    ("gold.users:\n  - {rule: unique, columns: [user_id], action: stop}", r"gold\.users rule #1 \(unique\): `action` must be one of warn, drop, fail"),
    ("gold.users:\n  - {rule: unique, action: fail}", r"rule #1 \(unique\): `columns` \(or `column`\) is required"),
    ("gold.users:\n  - {rule: range, colum: age, min: 0, action: warn}", r"unknown key\(s\) 'colum'"),
    ("gold.users:\n  - {rule: range, column: age, action: warn}", r"`min` and/or `max` is required"),
    ("gold.users:\n  - {rule: range, column: age, min: 5, max: 1, action: warn}", r"`min` \(5\) is greater than `max` \(1\)"),
    ("gold.users:\n  - {rule: accepted_values, column: gender, values: [], action: warn}", r"`values` must be a non-empty list"),
    ("gold.users:\n  - {rule: expression, expr: 'age > 0', action: warn}", r"`name` is required for an expression rule"),
    ("gold.lifecycle_daily:\n  - {rule: expression, name: x, expr: 'new = dau', join: {table: gold.nope, on: [activity_date]}, action: fail}",
     r"`join.table` 'gold\.nope' is not a known table"),
    ("gold.users:\n  - {rule: unique, columns: [user_id], action: fail}\n  - {rule: unique, column: user_id, action: warn}",
     r"rule #2: duplicate rule name 'unique\(user_id\)'"),
    ("gold.users: {rule: unique}", r"gold\.users: expected a list of rules"),
    ("gold.users:\n  - [unique, user_id]", r"gold\.users rule #1: a rule must be a mapping"),
    ("gold.users:\n  - {rule: unique, columns: [user_id], action: fail", r"not valid YAML"),
])
def test_bad_yaml_rule_gives_a_clear_error_naming_table_and_rule(tmp_path, text, message):
    path = tmp_path / "expectations.yaml"
    path.write_text(text + "\n")
    with pytest.raises(ValueError, match=message) as exc:
        Q.load_rules(path)
    assert str(path) in str(exc.value) and "\n" not in str(exc.value)


# ---------------------------------------------------------------- the shipped rules on real gold output

@pytest.mark.slow
def test_shipped_rules_pass_on_gold_built_by_the_project_and_catch_a_tampered_table(spark, cfg):
    """Every shipped gold rule holds on gold built by the project's own transforms from tiny silver."""
    from lakehouse import gold as GS
    from lakehouse.transforms.silver import SILVER_USERS_SCHEMA
    from lakehouse.transforms.content import course_progress, event_counts_daily, hourly_activity, page_views_daily, quiz_daily
    from lakehouse.transforms.demographics import demographics
    from lakehouse.transforms.engagement import engagement_daily, engagement_monthly, rolling_active
    from lakehouse.transforms.funnel import funnel_daily, funnel_user_entries
    from lakehouse.transforms.health import quarantine_summary
    from lakehouse.transforms.lifecycle import lifecycle_daily
    from lakehouse.transforms.loyalty import loyalty_balances, loyalty_daily, loyalty_events
    from lakehouse.transforms.retention import retention_daily, retention_weekly
    from lakehouse.transforms.revenue import revenue_by_currency_daily, revenue_daily, user_revenue
    from lakehouse.transforms.segments import assign_segments, segment_summary
    from lakehouse.transforms.sessions import sessions_daily
    from lakehouse.transforms.users import user_activity_daily, users_table

    schema = ("event_id string, event string, ts timestamp, user_id string, session_id string, device string, "
              "country string, page string, payment_status string, amount double, currency string, points long, "
              "quiz_id string, score double, max_score double, passed boolean, duration_s double, course_id string, "
              "progress_pct double")
    fields = [f.split()[0] for f in schema.split(", ")]
    raw = [
        ("page_view", 1, 9, "u1", {"device": "web", "page": "home", "country": "de"}),
        ("item_view", 1, 10, "u1", {"device": "web"}), ("add_to_cart", 1, 11, "u1", {"device": "web"}),
        ("checkout_start", 1, 12, "u1", {"device": "web"}),
        ("purchase", 1, 13, "u1", {"device": "web", "payment_status": "success", "amount": 30.0, "currency": "eur"}),
        ("item_view", 1, 14, "u2", {"device": "mobile"}),
        ("points_earned", 1, 15, "u2", {"device": "mobile", "points": 50}),
        ("page_view", 2, 9, "u1", {"device": "web", "page": "cart"}),
        ("purchase", 2, 10, "u2", {"device": "mobile", "payment_status": "failed", "amount": 5.0}),
        ("points_redeemed", 2, 11, "u2", {"device": "mobile", "points": 20}),
        ("quiz_attempt", 2, 12, "u3", {"device": "tablet", "quiz_id": "q1", "score": 8.0, "max_score": 10.0,
                                       "passed": True, "duration_s": 60.0}),
        ("course_progress", 3, 9, "u3", {"device": "tablet", "course_id": "c1", "progress_pct": 100.0}),
        ("item_view", 3, 10, "u1", {"device": "web"}),
        ("purchase", 3, 11, "u4", {"device": None, "payment_status": "success", "amount": 12.5}),
        ("app_uninstall", 3, 12, "u2", {"device": "mobile"}),
    ]
    rows = []
    for i, (event, day, hour, user, kw) in enumerate(raw):
        row = {"event_id": f"e{i}", "event": event, "ts": dt.datetime(2026, 1, day, hour), "user_id": user, **kw}
        rows.append(tuple(row.get(f) for f in fields))
    events = spark.createDataFrame(rows, schema)
    profiles = spark.createDataFrame(
        [("u1", dt.datetime(2025, 12, 20), "female", D(1990, 5, 1), None, "DE", None, "ads", None, None, None, None),
         ("u5", dt.datetime(2026, 1, 2), "unknown", None, 17, None, None, None, None, None, None, None)],
        SILVER_USERS_SCHEMA)
    sessions = spark.createDataFrame(
        [("u1", "s1", dt.datetime(2026, 1, 1, 9), dt.datetime(2026, 1, 1, 13), 5, 14400, False)],
        "user_id string, session_id string, session_start timestamp, session_end timestamp, events long, "
        "duration_s long, is_derived boolean")
    quarantine = spark.createDataFrame([("events", "not_json"), ("users", "missing_user_id")], "feed string, reason string")
    x = GS.prepare(spark, events, profiles, sessions, quarantine, cfg)
    try:
        daily_df = engagement_daily(x.cal, x.days, rolling_active(x.cal, x.neighbours, x.rng, {"wau": 7, "mau": 30}),
                                      x.users, x.events)
        points = loyalty_events(x.events)
        balances = loyalty_balances(points)
        segmented = assign_segments(users_table(x.users, balances), x.days, x.rng)
        tables = {
            "engagement_daily": daily_df,
            "engagement_monthly": engagement_monthly(x.days, x.users, daily_df, x.rng),
            "lifecycle_daily": lifecycle_daily(x.cal, x.neighbours, x.users, x.rng),
            "demographics": demographics(x.users, x.rng),
            "loyalty_daily": loyalty_daily(x.cal, points, daily_df),
            "loyalty_balances": balances,
            "user_activity_daily": user_activity_daily(x.days, x.users),
            "users": segmented.withColumn("cluster", F.lit(0)),        # k-means is not what is tested here
            "segment_summary": segment_summary(segmented),
            "cluster_profiles": spark.createDataFrame([(0, "all users", 5, 1.0, None)],
                                                      "cluster int, label string, users long, share double, silhouette double"),
            "quarantine_summary": quarantine_summary(x.quarantine),
            "retention_daily": retention_daily(x.cal, x.users, x.days, x.rng),
            "retention_weekly": retention_weekly(x.cal, x.users, x.days, x.rng),
            "funnel_daily": funnel_daily(x.active, x.rng.end),
            "funnel_entries": funnel_user_entries(x.active, x.rng.end),
            "revenue_daily": revenue_daily(x.cal, x.money, x.days),
            "user_revenue": user_revenue(x.money),
            "revenue_by_currency_daily": revenue_by_currency_daily(x.money),
            "sessions_daily": sessions_daily(x.cal, x.sessions, "UTC"),
            "event_counts_daily": event_counts_daily(x.cal, x.events, x.rng),
            "page_views_daily": page_views_daily(x.active, x.rng),
            "hourly_activity": hourly_activity(x.events),
            "quiz_daily": quiz_daily(x.active, x.rng),
            "course_progress": course_progress(x.active),
        }
        tables = {f"gold.{k}": GS.with_reporting_currency(k, v, cfg) for k, v in tables.items()}
        shipped = Q.load_rules(SHIPPED)
        res = Q.apply(tables, shipped, "t")
        assert res.ok, res.failed
        not_passed = [(r["table_name"], r["rule"], r["detail"]) for r in res.results
                      if r["passed"] is not True and r["table_name"].startswith("gold.")]
        assert not_passed == []
        assert {r["table_name"] for r in res.results if r["passed"] is None} == {"silver.events", "silver.users"}

        # One tampered gold table: the fail rules catch it.
        tampered = {"gold.engagement_daily": daily_df.withColumn(
            "wau", F.when(F.col("activity_date") == D(2026, 1, 2), F.lit(0)).otherwise(F.col("wau")))}
        res = Q.apply(tampered, {"gold.engagement_daily": shipped["gold.engagement_daily"]}, "t")
        assert res.failed == ["gold.engagement_daily: wau_at_least_dau (fail): 1 failing row"]
    finally:
        x.release()
