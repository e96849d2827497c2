"""The pipeline bench's peak memory (bench/peak.py): a run's processes, its JVM child included."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bench.peak import PeakRss, tree_rss

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc"), reason="samples /proc (Linux)")

MB = 2**20
# A child that starts a grandchild holding 200 MB for a moment (touched bytes, so they are resident).
HOLDER = "import time; b = b'\\x01' * (200 * 2**20); time.sleep(1.5)"
PARENT = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {HOLDER!r}])"


def test_the_peak_counts_the_memory_of_the_process_children_like_a_jvm_under_the_cli():
    proc = subprocess.Popen([sys.executable, "-c", PARENT])
    with PeakRss(proc.pid, interval=0.05) as memory:
        proc.wait()
    assert proc.returncode == 0
    # The parent alone holds some 10 MB; the 200 MB are its child's.
    assert 200 * MB <= memory.peak < 600 * MB


def test_a_process_that_has_ended_measures_nothing():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert tree_rss(proc.pid) is None
    with PeakRss(proc.pid, interval=0.05) as memory:
        pass
    assert memory.peak is None


def test_stat_fields_start_after_a_command_holding_spaces_and_parentheses(tmp_path, monkeypatch):
    from bench import peak

    (tmp_path / "123").mkdir()
    (tmp_path / "123" / "stat").write_text("123 (a (b) c) S 7 123 123 0 -1 4194560 1 0 0 0 250 40 0 0 20 0\n")
    monkeypatch.setattr(peak, "PROC", str(tmp_path))
    fields = peak.stat_fields(123)
    assert fields[:2] == ["S", "7"] and (fields[11], fields[12]) == ("250", "40")  # state, ppid, utime, stime
