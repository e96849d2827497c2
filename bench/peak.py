"""Peak resident memory of a process and its descendants, sampled from /proc (Linux).

A `lakehouse run` is a Python process whose JVM is a child process (and Spark may start Python
workers under it), so the run's memory is the whole tree's. `PeakRss` samples the tree's resident
set size while the run lasts; on a system without /proc it measures nothing (`peak` stays None).
"""

from __future__ import annotations

import os
import threading
from collections import defaultdict

PROC = "/proc"


def stat_fields(pid: int | str) -> list[str]:
    """The fields of /proc/<pid>/stat after the command: [state, ppid, ..., utime (11), stime (12), ...]
    (proc(5), numbered from 0 here). Raises OSError when the process has ended."""
    with open(f"{PROC}/{pid}/stat") as f:
        stat = f.read()
    # "pid (command) state ppid ...": the command may hold spaces and parentheses.
    return stat.rsplit(")", 1)[1].split()


def _parents() -> dict[int, int]:
    """pid -> parent pid of every process now."""
    out = {}
    for name in os.listdir(PROC):
        if not name.isdigit():
            continue
        try:
            out[int(name)] = int(stat_fields(name)[1])
        except OSError:  # it ended meanwhile
            continue
    return out


def tree_rss(root: int) -> int | None:
    """Resident bytes of `root` and all its descendants now; None without /proc or when `root` has ended."""
    if not os.path.isdir(PROC):
        return None
    children = defaultdict(list)
    for pid, ppid in _parents().items():
        children[ppid].append(pid)
    page = os.sysconf("SC_PAGE_SIZE")
    total, seen, todo = 0, False, [root]
    while todo:
        pid = todo.pop()
        try:
            with open(f"{PROC}/{pid}/statm") as f:
                total += int(f.read().split()[1]) * page
            seen = True
        except OSError:
            pass
        todo.extend(children.get(pid, ()))
    return total if seen else None


class PeakRss:
    """`with PeakRss(pid) as p: ...` then `p.peak`: the largest `tree_rss(pid)` sampled every
    `interval` seconds while the block ran (bytes; None when nothing could be sampled). A peak
    shorter than the interval can be missed."""

    def __init__(self, pid: int, interval: float = 0.25):
        self.pid, self.interval, self.peak = pid, interval, None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        rss = tree_rss(self.pid)
        if rss is not None and (self.peak is None or rss > self.peak):
            self.peak = rss

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def __enter__(self) -> "PeakRss":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
