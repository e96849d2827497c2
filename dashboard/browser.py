"""Headless Chromium helpers for the browser tests, screenshots and page-draw benchmark.

Uses Debian's /usr/bin/chromium and /usr/bin/chromedriver explicitly (never
Selenium Manager downloads) with the flags that keep Chromium off the network.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars", "--force-device-scale-factor=1")

# true once the page's layout is there, no Dash callback is pending and every graph is drawn
DRAWN_JS = """
const s = window.store && window.store.getState && window.store.getState();
if (!s || document.querySelector('._dash-loading')) return null;
const content = document.getElementById('_pages_content');
if (!content || !content.children.length) return null;
const cb = s.callbacks || {};
const pending = ['requested', 'prioritized', 'executing', 'watched', 'executed', 'blocked', 'stored']
    .reduce((n, k) => n + ((cb[k] || []).length), 0);
if (pending || s.isLoading) return null;
if (document.querySelector('[data-dash-is-loading="true"]')) return null;
for (const g of document.querySelectorAll('.dash-graph')) {
    if (!g.querySelector('.main-svg')) return null;
}
return performance.now();
"""


def available() -> bool:
    """Whether Debian's chromium and chromedriver are installed."""
    return os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)


class Driver:
    """A selenium Chrome driver with its own throw-away profile directory."""

    def __init__(self, width: int = 1440, height: int = 1000):
        from selenium import webdriver
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service

        os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium Manager reach the network
        self.profile = tempfile.mkdtemp(prefix="lakehouse-chromium-")
        opts = Options()
        opts.binary_location = CHROMIUM
        for flag in FLAGS:
            opts.add_argument(flag)
        opts.add_argument(f"--user-data-dir={self.profile}")
        opts.add_argument(f"--window-size={width},{height}")
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
        self.download_dir = tempfile.mkdtemp(prefix="lakehouse-downloads-")
        opts.add_experimental_option("prefs", {"download.default_directory": self.download_dir,
                                               "download.prompt_for_download": False})
        self.driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
        self.driver.execute_cdp_cmd("Page.setDownloadBehavior",
                                    {"behavior": "allow", "downloadPath": self.download_dir})

    def __getattr__(self, name):
        return getattr(self.driver, name)

    def wait_drawn(self, timeout: float = 30.0, settle: float = 0.15) -> float:
        """Wait until the page is fully drawn; return ms from navigation start to that moment."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            t = self.driver.execute_script(DRAWN_JS)
            if t is not None:
                time.sleep(settle)  # nothing new may start right after (chained callbacks)
                if self.driver.execute_script(DRAWN_JS) is not None:
                    return float(t)
            time.sleep(0.02)
        raise TimeoutError(f"page not drawn after {timeout} s: {self.driver.current_url}")

    def console_errors(self) -> list[dict]:
        """Browser console entries of level SEVERE since the last call."""
        return [e for e in self.driver.get_log("browser") if e.get("level") == "SEVERE"]

    def cpu_seconds(self) -> float:
        """CPU time (user + system) used so far by chromedriver and every browser process under it."""
        proc = getattr(getattr(self.driver, "service", None), "process", None)
        return tree_cpu_seconds(proc.pid) if proc is not None else 0.0

    def quit(self) -> None:
        """Close the browser and remove its profile."""
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)
            shutil.rmtree(self.download_dir, ignore_errors=True)


def tree_cpu_seconds(root: int) -> float:
    """user + system CPU seconds of a process and all its descendants (Linux /proc); 0 elsewhere."""
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    children: dict[int, list[int]] = {}
    stats: dict[int, float] = {}
    try:
        pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(pid)  # fields[1] is the parent pid
        stats[pid] = (int(fields[11]) + int(fields[12])) / ticks  # utime + stime
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += stats.get(pid, 0.0)
        todo.extend(children.get(pid, []))
    return total


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve(app, port: int | None = None):
    """Serve a Dash app from a background thread; yields its base URL."""
    import logging

    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    port = port or free_port()
    server = make_server("127.0.0.1", port, app.server, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="dashboard-test-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)


def downloaded(driver: Driver, suffix: str = ".csv", timeout: float = 10.0) -> Path:
    """The newest finished download with the given suffix."""
    deadline = time.time() + timeout
    d = Path(driver.download_dir)
    while time.time() < deadline:
        files = [p for p in d.iterdir() if p.name.endswith(suffix)]
        if files:
            return max(files, key=lambda p: p.stat().st_mtime)
        time.sleep(0.1)
    raise TimeoutError(f"no {suffix} download in {d}")
