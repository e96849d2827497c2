"""Shared fixtures: one Spark session for the whole test run, built by the project's own builder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("LAKEHOUSE_SHARED_DIR", ROOT.parent / "shared"))
REAL_DATA = SHARED / "data" / "real"


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
def real_data() -> Path:
    """../shared/data/real, skipping when the shared folder is not beside the repo."""
    if not REAL_DATA.is_dir():
        pytest.skip(f"shared real data not found at {REAL_DATA}")
    return REAL_DATA
