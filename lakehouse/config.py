"""Layered configuration: conf/base < conf/<env> < conf/local < LAKEHOUSE_* env vars < flags."""

from __future__ import annotations

import contextlib
import copy
import os
import sys
import zoneinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping

import yaml

if TYPE_CHECKING:  # no Spark import for reading configuration
    from pyspark.sql import SparkSession

ENV_PREFIX = "LAKEHOUSE_"


class ConfigError(ValueError):
    """A configuration value the pipeline cannot use; the message names it."""


def conf_dir() -> Path:
    """Where conf/ lives: $LAKEHOUSE_CONF_DIR, ./conf, the repository's conf/, or (installed from the
    wheel, as on Databricks or in a container: docs/deploy.md) the copy the wheel installs under
    `<prefix>/share/lakehouse/conf`."""
    explicit = os.environ.get("LAKEHOUSE_CONF_DIR")
    if explicit:
        return Path(explicit)
    here = Path.cwd() / "conf"
    if (here / "base").is_dir():
        return here
    repo = Path(__file__).resolve().parent.parent / "conf"
    installed = Path(sys.prefix) / "share" / "lakehouse" / "conf"
    if not (repo / "base").is_dir() and (installed / "base").is_dir():
        return installed
    return repo


def _merge(base: dict, over: Mapping) -> dict:
    """Deep-merge `over` into a copy of `base` (dicts merge, everything else replaces)."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


# libyaml's parser where PyYAML was built with it (its wheels are): the same values as
# yaml.safe_load, whose pure-Python parser took 78 ms for conf/base/expectations.yaml against 9 ms.
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(text: str) -> Any:
    """`yaml.safe_load(text)`, parsed by libyaml when available; raises yaml.YAMLError as it does."""
    return yaml.load(text, Loader=_SAFE_LOADER)  # noqa: S506 - a safe loader


def _read_layer(folder: Path) -> dict:
    """Merge every YAML file of one folder, in name order."""
    merged: dict = {}
    if not folder.is_dir():
        return merged
    for path in sorted(folder.glob("*.y*ml")):
        if path.name == "expectations.yaml":
            continue
        try:
            data = load_yaml(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path} is not valid YAML: {exc}".splitlines()[0]) from exc
        if not isinstance(data, dict):
            raise ConfigError(f"config file {path} must hold a mapping")
        merged = _merge(merged, data)
    return merged


def _set_path(cfg: dict, dotted: str, value: Any) -> None:
    """Set cfg[a][b] for 'a.b' (or 'a__b'); Spark conf keys keep their dots."""
    parts = dotted.replace("__", ".").split(".")
    if parts[0] == "spark" and len(parts) > 2 and parts[1] == "conf":
        parts = ["spark", "conf", ".".join(parts[2:])]
    elif parts[:2] == ["spark", "small_runs"] and len(parts) > 4 and parts[2] in ("conf", "whole_table_conf"):
        parts = ["spark", "small_runs", parts[2], ".".join(parts[3:])]
    elif parts[:2] == ["spark", "layers"] and len(parts) > 4:
        parts = ["spark", "layers", parts[2], ".".join(parts[3:])]
    node = cfg
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"cannot set {dotted}: {part} is not a section")
    node[parts[-1]] = value


def _env_overrides(cfg: dict, environ: Mapping[str, str]) -> dict:
    """LAKEHOUSE_<KEY>[__<SUB>] overrides keys that exist in the config (values parsed as YAML)."""
    out = copy.deepcopy(cfg)
    for name, raw in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX):
            continue
        parts = name[len(ENV_PREFIX):].lower().split("__")
        node = out
        for part in parts[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict) and parts[-1] in node:
            node[parts[-1]] = load_yaml(raw) if raw != "" else ""
    return out


def _validate(cfg: dict) -> dict:
    """Fail early, in one line, on values the pipeline cannot use."""
    try:
        zoneinfo.ZoneInfo(str(cfg["timezone"]))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, KeyError):
        raise ConfigError(f"timezone: unknown time zone {cfg.get('timezone')!r} (use an IANA name like Europe/Paris)")
    if not isinstance(cfg.get("excluded_events"), list) or not all(isinstance(e, str) for e in cfg["excluded_events"]):
        raise ConfigError("excluded_events: must be a list of event names")
    for key in ("session_gap_minutes", "max_line_bytes", "max_future_skew_hours", "vacuum_retention_hours"):
        value = cfg.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ConfigError(f"{key}: must be a positive whole number, got {value!r}")
    funnel = cfg.get("funnel") or {}
    steps = funnel.get("steps")
    if not isinstance(steps, list) or len(steps) < 2 or not all(isinstance(s, str) and s for s in steps):
        raise ConfigError("funnel.steps: must be a list of at least two event names")
    if not isinstance(funnel.get("window_days"), int) or funnel["window_days"] < 0:
        raise ConfigError(f"funnel.window_days: must be a whole number >= 0, got {funnel.get('window_days')!r}")
    code = cfg.get("reporting_currency")
    if not isinstance(code, str) or len(code.strip()) != 3 or not code.strip().isalpha():
        raise ConfigError(f"reporting_currency: must be a three-letter ISO-4217 code like USD, got {code!r}")
    rates_file = cfg.get("currency_rates_file")
    if rates_file is not None and not isinstance(rates_file, str):
        raise ConfigError(f"currency_rates_file: must be a file path or null, got {rates_file!r}")
    spark = cfg.get("spark") or {}
    partitions = (spark.get("conf") or {}).get("spark.sql.shuffle.partitions", 4)
    if not str(partitions).isdigit() or int(partitions) <= 0:
        raise ConfigError(f"spark.conf.spark.sql.shuffle.partitions: must be a positive whole number, got {partitions!r}")
    small = spark.get("small_runs") or {}
    if not isinstance(small, dict) or any(not isinstance(small.get(k) or {}, dict) for k in ("conf", "whole_table_conf")):
        raise ConfigError("spark.small_runs: must be a mapping with silver_max_bytes, gold_max_events, conf and whole_table_conf")
    layers = spark.get("layers") or {}
    if not isinstance(layers, dict) or any(not isinstance(v or {}, dict) for v in layers.values()):
        raise ConfigError("spark.layers: must map a layer name (bronze, silver, gold) to Spark SQL settings")
    for key in ("silver_max_bytes", "gold_max_events"):
        value = small.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            raise ConfigError(f"spark.small_runs.{key}: must be a whole number >= 0 (0 = never), got {value!r}")
    writes = cfg.get("small_writes") or {}
    if not isinstance(writes, dict):
        raise ConfigError("small_writes: must be a mapping with bronze_max_bytes and silver_max_rows")
    for key, value in writes.items():
        if key not in SMALL_WRITES or not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ConfigError(f"small_writes.{key}: must be one of {', '.join(SMALL_WRITES)}, "
                              f"a whole number >= 0 (0 = never), got {value!r}")
    check = spark.get("executor_check_seconds", 0)
    if isinstance(check, bool) or not isinstance(check, (int, float)) or check < 0:
        raise ConfigError(f"spark.executor_check_seconds: must be a number of seconds >= 0 (0 = no check), got {check!r}")
    return cfg


SMALL_WRITES = ("bronze_max_bytes", "silver_max_rows")


def small_writes(cfg: Mapping) -> dict[str, int]:
    """The `small_writes` bounds (conf/base/lakehouse.yaml): bronze bytes of text per feed and silver
    rows per write up to which a batch is committed by delta-rs from the driver; a bound the
    config leaves out is 0 (never)."""
    return {key: int((cfg.get("small_writes") or {}).get(key) or 0) for key in SMALL_WRITES}


def load_config(
    env: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    root: Path | None = None,
) -> dict:
    """Build the run configuration from every layer; `overrides` are dotted keys from flags."""
    root = root or conf_dir()
    if not (root / "base").is_dir():
        raise ConfigError(f"config folder {root / 'base'} not found (set LAKEHOUSE_CONF_DIR)")
    cfg = _read_layer(root / "base")
    if env:
        if not (root / env).is_dir():
            raise ConfigError(f"--conf {env}: no folder {root / env}")
        cfg = _merge(cfg, _read_layer(root / env))
    cfg = _merge(cfg, _read_layer(root / "local"))
    cfg = _env_overrides(cfg, os.environ if environ is None else environ)
    for key, value in (overrides or {}).items():
        if value is not None:
            _set_path(cfg, key, value)
    return _validate(cfg)


def parse_set(items: list[str] | None) -> dict:
    """Turn repeated `--set key=value` flags into dotted overrides (values parsed as YAML)."""
    out = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected key=value")
        key, raw = item.split("=", 1)
        out[key.strip()] = load_yaml(raw)
    return out


def expectations_path(root: Path | None = None) -> Path:
    """The data-quality rules file (conf/local overrides conf/base)."""
    root = root or conf_dir()
    local = root / "local" / "expectations.yaml"
    return local if local.is_file() else root / "base" / "expectations.yaml"


def cache_dir(name: str) -> Path | None:
    """A writable folder for files built on this machine (`name`: e.g. "cds", "serve"): inside the
    virtual environment (`<venv>/var/lakehouse-<name>`, they belong to its jars), else
    `~/.cache/lakehouse/<name>`; None when neither can be written."""
    for candidate in (Path(sys.prefix) / "var" / f"lakehouse-{name}", Path.home() / ".cache" / "lakehouse" / name):
        try:
            candidate.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        if os.access(candidate, os.W_OK):
            return candidate
    return None


def conf_value(value) -> str:
    """A YAML value as Spark expects it (booleans lower-case)."""
    return str(value).lower() if isinstance(value, bool) else str(value)


@contextlib.contextmanager
def tuned(spark: SparkSession, conf: Mapping | None) -> Iterator[None]:
    """Run a block with extra SQL settings (None: none), restoring the previous values afterwards."""
    conf = {k: conf_value(v) for k, v in (conf or {}).items()}
    saved = {k: spark.conf.get(k, None) for k in conf}
    for k, v in conf.items():
        spark.conf.set(k, v)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                spark.conf.unset(k)
            else:
                spark.conf.set(k, v)


def whole_table_conf(cfg: dict, rows: int | None) -> dict | None:
    """The settings of a small silver run's steps that scan silver.events whole (the sessions cut):
    `spark.small_runs.whole_table_conf` when silver.events holds more than
    `spark.small_runs.gold_max_events` rows (`rows`; None: unknown), else None (the layer's own).

    Silver chooses its settings by the bytes of the batches it parses (`session.layer_settings`); a small
    batch landed on a large lake still cuts sessions from scans of the whole table, which
    interpreted evaluation makes slower (docs/performance.md "Small runs by what a step reads").
    """
    small = (cfg.get("spark") or {}).get("small_runs") or {}
    limit, conf = small.get("gold_max_events"), small.get("whole_table_conf")
    if rows is None or not limit or rows <= int(limit) or not conf:
        return None
    return dict(conf)
