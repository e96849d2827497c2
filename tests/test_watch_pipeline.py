"""Watch mode with the real pipeline: one `lakehouse run --watch` process against separate runs.

Three landing batches arrive while the watch runs. Idle cycles must write nothing; the third
batch's cycle is killed with SIGKILL right after its bronze commit, and a new watch process must
finish it without losing or doubling a line; SIGTERM then ends the watch cleanly (exit 0). Every
gold, silver and bronze table must equal a lake built by one `lakehouse run` per batch.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_kill import _assert_same_table, _built_tables, _commits

from lakehouse.generator import generate
from lakehouse.tables import BRONZE, GOLD, SILVER

pytestmark = [pytest.mark.e2e, pytest.mark.trust]

LAKEHOUSE = Path(sys.executable).parent / "lakehouse"
TIMEOUT_S = float(os.environ.get("LAKEHOUSE_WATCH_TEST_TIMEOUT", "1800"))


def _batches(src: Path) -> list[list[Path]]:
    days = sorted(p.relative_to(src) for p in (src / "events").rglob("events-*.jsonl*"))
    users = sorted(p.relative_to(src) for p in (src / "users").iterdir())
    return [days[:3] + users[:1], days[3:5] + users[1:], days[5:]]


def _land(files: list[Path], src: Path, landing: Path) -> None:
    for f in files:
        (landing / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src / f, landing / f)


class Watch:
    """A `lakehouse run --watch` process whose output is read line by line."""

    def __init__(self, landing: Path, lake: Path, log: Path):
        self.log = open(log, "a")
        self.proc = subprocess.Popen([str(LAKEHOUSE), "run", "--watch", "--interval", "1", "--landing", str(landing),
                                      "--lake", str(lake)], stdout=subprocess.PIPE, stderr=self.log, text=True,
                                     start_new_session=True)
        self.lines: list[str] = []

    def wait_for(self, pattern: str, count: int = 1) -> None:
        """Read output until `pattern` has appeared `count` times in all of it."""
        deadline = time.monotonic() + TIMEOUT_S
        while sum(bool(re.search(pattern, ln)) for ln in self.lines) < count:
            assert time.monotonic() < deadline, f"no {pattern!r} within {TIMEOUT_S}s: {self.lines[-5:]}"
            line = self.proc.stdout.readline()
            assert line, f"watch ended before {pattern!r}: {self.lines[-5:]}"
            self.log.write(line)
            self.lines.append(line.rstrip("\n"))

    def kill_group(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=60)


def test_watch_mode_gives_the_tables_of_separate_runs_survives_sigkill_and_stops_on_sigterm(tmp_path):
    src = tmp_path / "src"
    generate(str(src), users=40, days=6, seed=5)
    batches = _batches(src)

    # Reference: one `lakehouse run` per batch.
    ref_landing, ref = tmp_path / "ref-landing", tmp_path / "ref"
    for files in batches:
        _land(files, src, ref_landing)
        subprocess.run([str(LAKEHOUSE), "run", "--landing", str(ref_landing), "--lake", str(ref)], check=True,
                       capture_output=True, timeout=TIMEOUT_S)

    landing, lake = tmp_path / "landing", tmp_path / "lake"
    _land(batches[0], src, landing)
    w = Watch(landing, lake, tmp_path / "watch.log")
    try:
        w.wait_for(r"^watch: cycle \d+: processed")
        # Idle cycles: nothing new, nothing written.
        before = _commits(lake)
        time.sleep(4)  # about three idle cycles at --interval 1
        assert _commits(lake) == before, "a cycle that found nothing wrote something"

        _land(batches[1], src, landing)
        w.wait_for(r"^watch: cycle \d+: processed", 2)

        # Third batch: SIGKILL the watch right after its bronze commit, mid-batch.
        bronze_versions = {k for k in _commits(lake) if k[0] == "bronze.events"}
        _land(batches[2], src, landing)
        deadline = time.monotonic() + TIMEOUT_S
        while not ({k for k in _commits(lake) if k[0] == "bronze.events"} - bronze_versions):
            assert time.monotonic() < deadline and w.proc.poll() is None, "bronze never committed the third batch"
            time.sleep(0.01)
        w.kill_group()
    finally:
        if w.proc.poll() is None:
            w.kill_group()

    # A new watch finishes the batch, then SIGTERM ends it between batches.
    w2 = Watch(landing, lake, tmp_path / "watch.log")
    try:
        w2.wait_for(r"^watch: cycle \d+: processed")
        os.kill(w2.proc.pid, signal.SIGTERM)  # as `kill PID` or systemd's KillMode=mixed sends it
        out, _ = w2.proc.communicate(timeout=TIMEOUT_S)
        assert w2.proc.returncode == 0, f"SIGTERM should end the watch cleanly: {out[-500:]}"
        assert "watch: stopped (SIGTERM)" in out
    finally:
        if w2.proc.poll() is None:
            w2.kill_group()

    for name in GOLD:
        _assert_same_table(ref, lake, f"gold.{name}")
    # The two lakes read different landing folders: the file paths differ, as do ingestion times.
    for name in _built_tables(ref, lake, "silver", SILVER):
        _assert_same_table(ref, lake, name, drop=("ingested_at", "source_file"))
    for name in BRONZE:
        _assert_same_table(ref, lake, f"bronze.{name}", drop=("ingested_at", "source_file"))
