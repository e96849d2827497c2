"""Shared fixtures: one Spark session for the whole test run, built by the project's own builder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Real public data in the landing format. UCI Online Retail is CC0 and kept in the repository;
# the REES46 clickstream sample states no licence, so it is not: a test needing it runs only when
# LAKEHOUSE_REES46_DIR names a landing folder holding it (events/**/*.jsonl.gz).
UCI_DATA = ROOT / "tests" / "data" / "uci_online_retail"
REES46_ENV = "LAKEHOUSE_REES46_DIR"


@pytest.fixture(scope="session")
def cfg():
    """The base configuration, as jobs see it (no environment overrides)."""
    from lakehouse.config import load_config

    return load_config(environ={}, root=ROOT / "conf")


@pytest.fixture(scope="session")
def spark(cfg):
    """The one Spark session of the test run (same builder as jobs and the CLI)."""
    from lakehouse.session import build_spark

    session = build_spark(cfg, app_name="lakehouse-tests")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def uci_data() -> Path:
    """The UCI Online Retail landing folder kept under tests/data (see its README)."""
    assert (UCI_DATA / "events").is_dir(), f"{UCI_DATA} is part of the repository and should be there"
    return UCI_DATA


@pytest.fixture(scope="session")
def rees46_data() -> Path:
    """The REES46 sample's landing folder from $LAKEHOUSE_REES46_DIR; skips, saying why, without it."""
    value = os.environ.get(REES46_ENV)
    if not value:
        pytest.skip(f"REES46 sample not in the repository (no licence); set {REES46_ENV} to run")
    path = Path(value)
    if not (path / "events").is_dir():
        pytest.skip(f"{REES46_ENV}={value} has no events/ folder; point it at the REES46 sample's landing folder")
    return path


@pytest.fixture(scope="session")
def generated_build(spark, cfg, tmp_path_factory) -> dict:
    """One lake the pipeline builds from 300 generated users x 45 days (seed 7), once per test run.

    Shared by tests/test_e2e.py and tests/dashboard/test_gold_parity.py; read-only for them (a
    test that runs the pipeline again on it must leave gold as it was). Returns {"lake": Path,
    "summary": generator summary, "result": pipeline result, "tuned": the Spark settings each
    layer ran with, in order}.
    """
    from lakehouse import pipeline
    from lakehouse.generator import generate

    root = tmp_path_factory.mktemp("generated")
    summary = generate(str(root / "landing"), users=300, days=45, seed=7)
    tuned: list[dict] = []
    real = pipeline.tuned

    def spy(session, conf):  # records the settings each layer ran with
        tuned.append(dict(conf or {}))
        return real(session, conf)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pipeline, "tuned", spy)
        result = pipeline.run(spark, cfg, str(root / "landing"), str(root / "lake"), progress=lambda m: None)
    return {"lake": root / "lake", "summary": summary, "result": result, "tuned": tuned}


# `make test` runs the suite on two pytest-xdist workers (`-n 2 --dist loadfile`): each test file runs
# whole on one worker, so a module-scoped fixture (most build a lake) is built once. Files that share
# a lake-building session fixture run on the same worker too, so that lake is also built once.
SHARED_SCOPES = {
    "tests/test_e2e.py": "generated_build",
    "tests/dashboard/test_gold_parity.py": "generated_build",
}

try:
    from xdist.scheduler import LoadFileScheduling
except ImportError:  # pytest-xdist is a dev dependency; without it the suite runs in one process
    LoadFileScheduling = None

if LoadFileScheduling is not None:

    class _FileScheduling(LoadFileScheduling):
        """`--dist loadfile`, with the files of SHARED_SCOPES as one unit of work."""

        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return SHARED_SCOPES.get(path, path)

    def pytest_xdist_make_scheduler(config, log):
        """Our scheduler for `--dist loadfile`; any other mode is xdist's own."""
        return _FileScheduling(config, log) if config.getvalue("dist") == "loadfile" else None
