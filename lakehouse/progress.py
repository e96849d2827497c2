"""Where a run is: each step's start and finish and each item (a gold table, a silver sub-step) as it ends.

`Reporter` writes plain lines through a callable (print by default): one line when a step
starts, one per finished item and one per finished step, each with its seconds. That is what
logs, pipes and CI get. `LiveReporter` draws the same events as a live progress display (rich)
on a terminal. `auto()` picks one; `as_reporter()` turns what callers of `pipeline.run` pass
(a reporter, a callable taking a line, or None) into a reporter. Every method is thread-safe:
gold writes its tables from a thread pool.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Callable, TextIO

Line = Callable[[str], None]


def _print_flush(text: str) -> None:
    print(text, flush=True)


def interactive(stream: TextIO | None = None, environ=None) -> bool:
    """A person is watching: `stream` (stderr by default) is a terminal and no CI variable is set."""
    environ = os.environ if environ is None else environ
    if str(environ.get("CI", "")).strip().lower() not in ("", "0", "false", "no"):
        return False
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


class Reporter:
    """Plain-line progress: every event is one line, written through `emit`."""

    def __init__(self, emit: Line = _print_flush):
        self._emit = emit
        self._lock = threading.RLock()
        self._totals: dict[str, int | None] = {}
        self._done: dict[str, int] = {}

    # A reporter is also a plain `progress(line)` callable, as `pipeline.run` callers used to pass.
    def __call__(self, text: str) -> None:
        self.message(text)

    def message(self, text: str) -> None:
        """A free-form line (what a step found, a note)."""
        with self._lock:
            self._emit(text)

    def start(self, step: str, text: str | None = None, total: int | None = None) -> None:
        """`step` begins; `total` is how many items it will report, when known."""
        with self._lock:
            self._totals[step] = total
            self._done[step] = 0
            self._emit(text or f"{step}: started")

    def item(self, step: str, name: str, seconds: float) -> None:
        """One item of `step` (a table written, a sub-step) finished after `seconds`."""
        with self._lock:
            self._done[step] = n = self._done.get(step, 0) + 1
            total = self._totals.get(step)
            count = f" ({n}/{total})" if total else ""
            self._emit(f"{step}: {name} {seconds:.1f}s{count}")

    def finish(self, step: str, seconds: float, text: str | None = None) -> None:
        """`step` ended after `seconds`; `text` says what it did."""
        with self._lock:
            self._emit(f"{text or f'{step}: done'} ({seconds:.1f}s)")

    def close(self) -> None:
        """Stop any display (nothing to do for plain lines)."""

    def __enter__(self) -> "Reporter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class LiveReporter(Reporter):
    """A live display for a terminal: one row per step, with a bar while its items come in."""

    def __init__(self, stream: TextIO | None = None):
        super().__init__()
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.console = Console(file=stream or sys.stderr)
        self._progress = Progress(
            SpinnerColumn(finished_text="[green]✓"), TextColumn("{task.description}"), BarColumn(),
            MofNCompleteColumn(), TimeElapsedColumn(), console=self.console, transient=False,
        )
        self._tasks: dict = {}
        self._started = False

    def _ensure_started(self) -> None:
        if not self._started:
            self._progress.start()
            self._started = True

    def message(self, text: str) -> None:
        with self._lock:
            self._ensure_started()
            self._progress.console.print(text, highlight=False, markup=False)

    def start(self, step: str, text: str | None = None, total: int | None = None) -> None:
        with self._lock:
            self._ensure_started()
            self._totals[step] = total
            self._done[step] = 0
            self._tasks[step] = self._progress.add_task(text or step, total=total)

    def item(self, step: str, name: str, seconds: float) -> None:
        with self._lock:
            self._done[step] = self._done.get(step, 0) + 1
            task = self._tasks.get(step)
            if task is None:
                return
            self._progress.update(task, advance=1, description=f"{step}: {name} {seconds:.1f}s")

    def finish(self, step: str, seconds: float, text: str | None = None) -> None:
        with self._lock:
            task = self._tasks.pop(step, None)
            if task is None:  # a step that was not announced: its outcome is a line
                self.message(f"{text or f'{step}: done'} ({seconds:.1f}s)")
                return
            done = self._done.get(step, 0)
            total = self._totals.get(step) or done or 1
            self._progress.update(task, total=max(total, done, 1), completed=max(total, done, 1),
                                  description=f"{text or f'{step}: done'} ({seconds:.1f}s)")
            self._progress.stop_task(task)

    def close(self) -> None:
        with self._lock:
            if self._started:
                self._progress.stop()
                self._started = False


class _Silent(Reporter):
    def __init__(self):
        super().__init__(emit=lambda _: None)


def auto(stream: TextIO | None = None) -> Reporter:
    """A live display when a person watches `stream` (stderr by default), else plain lines on stdout."""
    if interactive(stream):
        try:
            return LiveReporter(stream)
        except ImportError:  # rich missing: plain lines still tell the story
            pass
    return Reporter()


def as_reporter(progress: Reporter | Line | None) -> Reporter:
    """The reporter for what a caller passed: itself, plain lines through a callable, or silence."""
    if isinstance(progress, Reporter):
        return progress
    if progress is None:
        return _Silent()
    return Reporter(emit=progress)


_TRACE = os.environ.get("LAKEHOUSE_GOLD_TRACE") == "1"
_LAST_LAP = [0.0]


def trace(step: str) -> None:
    """With LAKEHOUSE_GOLD_TRACE=1, print to stderr the seconds since the previous call (profiling gold's steps)."""
    if _TRACE:
        import time

        now = time.perf_counter()
        print(f"gold trace: {step} {now - _LAST_LAP[0]:.1f}s", file=sys.stderr, flush=True)
        _LAST_LAP[0] = now
