"""Fixtures: a small fake gold lake (built once per session) and a dashboard configured on it."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
for p in (str(HERE), str(ROOT)):
    if p not in sys.path:
        sys.path.insert(0, p)

from dashboard import data  # noqa: E402
from dashboard.config import configure  # noqa: E402
from fake_lake import FakeLake, build_fake_lake  # noqa: E402

# 70 days from Monday 2024-01-01 to Sunday 2024-03-10: the lake ends mid-month (March is partial)
START = date(2024, 1, 1)
DAYS = 70


@pytest.fixture(scope="session")
def lake(tmp_path_factory) -> FakeLake:
    """The shared fake lake (read-only for tests: build your own to modify one)."""
    return build_fake_lake(tmp_path_factory.mktemp("lake"), n_users=120, n_days=DAYS, start=START, seed=7)


@pytest.fixture()
def configured(lake) -> FakeLake:
    """The dashboard pointed at the shared fake lake, with empty caches, no login."""
    configure(lake.root, users={})
    data.clear_caches()
    return lake


@pytest.fixture()
def fresh_lake(tmp_path) -> FakeLake:
    """A private fake lake the test may modify, already configured."""
    lk = build_fake_lake(tmp_path / "lake", n_users=60, n_days=40, start=START, seed=3)
    configure(lk.root, users={})
    data.clear_caches()
    return lk
