"""Configuration layering and the CLI's one-line errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lakehouse import cli
from lakehouse.config import ConfigError, load_config, parse_set
from lakehouse.session import layer_conf, small_run_conf, tuned
from lakehouse.tables import Lake, UnknownTableError, resolve_table

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture()
def conf_root(tmp_path):
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "lakehouse.yaml").write_text((ROOT / "conf" / "base" / "lakehouse.yaml").read_text())
    (tmp_path / "base" / "spark.yaml").write_text((ROOT / "conf" / "base" / "spark.yaml").read_text())
    return tmp_path


def test_layers_apply_base_then_env_then_local_then_environment_then_flags(conf_root):
    (conf_root / "prod").mkdir()
    (conf_root / "prod" / "x.yaml").write_text("timezone: Europe/Paris\nsession_gap_minutes: 45\nfunnel: {window_days: 7}\n")
    (conf_root / "local").mkdir()
    (conf_root / "local" / "x.yaml").write_text("session_gap_minutes: 20\n")
    cfg = load_config(env="prod", root=conf_root, environ={})
    assert (cfg["timezone"], cfg["session_gap_minutes"], cfg["funnel"]["window_days"]) == ("Europe/Paris", 20, 7)
    assert cfg["funnel"]["steps"][0] == "item_view"  # deep merge keeps what the layer did not set
    env = {"LAKEHOUSE_SESSION_GAP_MINUTES": "15", "LAKEHOUSE_FUNNEL__WINDOW_DAYS": "3", "LAKEHOUSE_UNRELATED": "x"}
    cfg = load_config(env="prod", root=conf_root, environ=env)
    assert (cfg["session_gap_minutes"], cfg["funnel"]["window_days"]) == (15, 3)
    cfg = load_config(env="prod", root=conf_root, environ=env,
                      overrides={"timezone": "Asia/Tokyo", "spark.conf.spark.sql.shuffle.partitions": 2})
    assert cfg["timezone"] == "Asia/Tokyo" and cfg["spark"]["conf"]["spark.sql.shuffle.partitions"] == 2


@pytest.mark.parametrize("override,message", [
    ({"timezone": "Mars/Olympus"}, "timezone"),
    ({"session_gap_minutes": -1}, "session_gap_minutes"),
    ({"funnel.steps": ["only_one"]}, "funnel.steps"),
    ({"excluded_events": "app_uninstall"}, "excluded_events"),
    ({"spark.small_runs.gold_max_events": "many"}, "spark.small_runs.gold_max_events"),
    ({"small_writes.silver_max_rows": -1}, "small_writes.silver_max_rows"),
])
def test_bad_config_values_are_named(conf_root, override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(root=conf_root, environ={}, overrides=override)


def test_set_flags_parse_yaml_values():
    assert parse_set(["funnel.window_days=7", "excluded_events=[a, b]"]) == {"funnel.window_days": 7, "excluded_events": ["a", "b"]}
    with pytest.raises(ConfigError):
        parse_set(["novalue"])


def test_small_run_settings_apply_only_up_to_each_layers_limit(conf_root):
    cfg = load_config(root=conf_root, environ={}, overrides={
        "spark.small_runs.silver_max_bytes": 100, "spark.small_runs.gold_max_events": 0,
        "spark.small_runs.conf.spark.sql.adaptive.enabled": False})
    assert small_run_conf(cfg, "silver", 100)["spark.sql.adaptive.enabled"] is False  # dotted key kept whole
    assert small_run_conf(cfg, "silver", 101) is None
    assert small_run_conf(cfg, "silver", None) is None   # unknown size: not small
    assert small_run_conf(cfg, "gold", 0) is None        # 0 = never
    assert small_run_conf(cfg, "bronze", 1) is None


def test_gold_runs_without_adaptive_execution_at_any_size_and_small_run_settings_add_to_a_layers_own(conf_root):
    cfg = load_config(root=conf_root, environ={}, overrides={
        "spark.small_runs.gold_max_events": 10, "spark.small_runs.conf.spark.sql.codegen.wholeStage": False,
        "spark.layers.gold.spark.sql.shuffle.partitions": 2})
    assert layer_conf(cfg, "gold", 10**9)["spark.sql.adaptive.enabled"] is False   # shipped in conf/base
    assert layer_conf(cfg, "gold", 10**9)["spark.sql.shuffle.partitions"] == 2      # dotted key kept whole
    assert "spark.sql.codegen.wholeStage" not in layer_conf(cfg, "gold", 11)
    assert layer_conf(cfg, "gold", 10)["spark.sql.codegen.wholeStage"] is False
    assert layer_conf(cfg, "bronze", 1) == {"spark.sql.adaptive.enabled": False}  # no small-run settings for bronze
    with pytest.raises(ConfigError, match="spark.layers"):
        load_config(root=conf_root, environ={}, overrides={"spark.layers.gold": 3})


def test_tuned_settings_are_restored_after_the_block(spark):
    key, other = "spark.sql.codegen.factoryMode", "spark.sql.autoBroadcastJoinThreshold"
    before = spark.conf.get(other)
    spark.conf.unset(key)
    with tuned(spark, {key: "NO_CODEGEN", other: -1}):
        assert (spark.conf.get(key), spark.conf.get(other)) == ("NO_CODEGEN", "-1")
    assert spark.conf.get(other) == before
    assert spark.conf.get(key, None) in (None, "FALLBACK")  # unset again: back to Spark's default
    with pytest.raises(RuntimeError), tuned(spark, {other: 1}):
        raise RuntimeError("a failing step")
    assert spark.conf.get(other) == before


def test_unknown_table_names_are_refused():
    with pytest.raises(UnknownTableError, match="unknown table 'gold.nope'"):
        Lake("/tmp/x").path("gold.nope")
    assert resolve_table("users") == "gold.users"


def _run(capsys, *argv):
    code = cli.main(list(argv))
    err = capsys.readouterr().err.strip()
    return code, err


def test_missing_landing_folder_is_one_line_and_non_zero(capsys, tmp_path):
    code, err = _run(capsys, "run", "--landing", str(tmp_path / "nope"), "--lake", str(tmp_path / "lake"))
    assert code == 2 and err == f"lakehouse run: error: landing folder not found: {tmp_path / 'nope'}"


def test_unwritable_lake_is_one_line_and_non_zero(capsys, tmp_path):
    if os.geteuid() == 0:
        blocker = tmp_path / "file"
        blocker.write_text("not a folder")
        lake = blocker / "lake"  # a path below a regular file can never be created, even by root
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        lake = locked / "lake"
    (tmp_path / "landing").mkdir()
    code, err = _run(capsys, "run", "--landing", str(tmp_path / "landing"), "--lake", str(lake))
    assert code == 2 and "lake folder is not writable" in err and len(err.splitlines()) == 1


def test_bad_config_value_on_the_command_line_is_one_line(capsys, tmp_path):
    (tmp_path / "landing").mkdir()
    code, err = _run(capsys, "run", "--landing", str(tmp_path / "landing"), "--lake", str(tmp_path / "lake"), "--timezone", "Nowhere/City")
    assert code == 2 and "timezone: unknown time zone 'Nowhere/City'" in err and len(err.splitlines()) == 1


def test_unknown_conf_environment_is_named(capsys, tmp_path):
    code, err = _run(capsys, "run", "--landing", str(tmp_path), "--lake", str(tmp_path / "lake"), "--conf", "staging")
    assert code == 2 and "--conf staging" in err


def test_sql_output_formats():
    rows = [("a", 1, None), ("b", 22, 3.5)]
    table = cli.format_rows(["k", "n", "x"], rows, "table")
    assert "| k | n  | x    |" in table and "(2 rows)" in table
    assert cli.format_rows(["k", "n", "x"], rows, "csv") == "k,n,x\na,1,\nb,22,3.5"
    assert cli.format_rows(["k"], [("a",)], "json") == '{"k": "a"}'
