"""How the suite is split over pytest-xdist workers (`make test`: `-n 2 --dist loadfile`, tests/conftest.py).

Each worker has its own Spark session, and a session-scoped fixture is built once per worker. A
session fixture that builds a lake with Spark must therefore have all the files that use it in one
unit of work, or the lake is built once per worker that runs one of them.
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"


def _conftest():
    spec = importlib.util.spec_from_file_location("_suite_conftest", TESTS / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _session_fixtures_using_spark() -> list[str]:
    """Names of the session-scoped fixtures in tests/conftest.py that take the `spark` fixture."""
    tree = ast.parse((TESTS / "conftest.py").read_text())
    names = []
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef) or not any(a.arg == "spark" for a in node.args.args):
            continue
        for dec in node.decorator_list:
            if isinstance(dec, ast.Call) and any(
                k.arg == "scope" and getattr(k.value, "value", None) == "session" for k in dec.keywords
            ):
                names.append(node.name)
    return names


def _files_using(fixture: str) -> list[str]:
    """Test files (paths relative to the repository, as pytest's node ids give them) naming the fixture."""
    found = []
    for path in sorted(TESTS.rglob("test_*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and any(
                a.arg == fixture for a in node.args.args
            ):
                found.append(path.relative_to(ROOT).as_posix())
                break
    return found


def test_files_sharing_a_spark_built_session_fixture_are_one_unit_of_work_for_the_workers():
    conftest = _conftest()
    fixtures = _session_fixtures_using_spark()
    assert "generated_build" in fixtures, fixtures
    for fixture in fixtures:
        files = _files_using(fixture)
        if len(files) < 2:
            continue
        scopes = {conftest.SHARED_SCOPES.get(f, f) for f in files}
        assert len(scopes) == 1, (
            f"{files} use the session fixture {fixture!r} but would run on different workers: "
            f"map them to one scope in SHARED_SCOPES (tests/conftest.py)"
        )


def test_the_scheduler_keeps_each_file_whole_and_shared_files_together():
    pytest.importorskip("xdist", reason="pytest-xdist (a dev dependency) runs the suite on workers")
    conftest = _conftest()
    split = conftest._FileScheduling._split_scope
    assert split(None, "tests/test_e2e.py::test_a") == split(None, "tests/dashboard/test_gold_parity.py::test_b")
    assert split(None, "tests/test_sessions.py::test_a") == split(None, "tests/test_sessions.py::test_b[1]")
    assert split(None, "tests/test_sessions.py::test_a") != split(None, "tests/test_silver.py::test_a")
