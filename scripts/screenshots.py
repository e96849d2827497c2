#!/usr/bin/env python
"""Save a PNG of every dashboard page (light and dark mode) with headless Chromium.

    .venv/bin/python scripts/screenshots.py --lake DIR --out docs/screenshots

Needs Debian's chromium and chromium-driver (scripts/install_chromium.sh).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dashboard import browser  # noqa: E402
from dashboard.app import create_app  # noqa: E402


def page_paths() -> list[tuple[str, str]]:
    """(file stem, path) of every registered page, in navigation order."""
    import dash

    pages = sorted(dash.page_registry.values(), key=lambda p: p.get("order") or 0)
    return [(p["module"].split(".")[-1], p["path"]) for p in pages]


def main(argv: list[str] | None = None) -> int:
    """Start the app on the lake, open each page, save <out>/<page>[-dark].png."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lake", required=True)
    ap.add_argument("--out", default="docs/screenshots")
    ap.add_argument("--width", type=int, default=1440)
    ap.add_argument("--height", type=int, default=900)
    ap.add_argument("--themes", default="light,dark", help="comma-separated: light,dark")
    ap.add_argument("--query", default="", help="query string for every page, e.g. '?range=90d'")
    args = ap.parse_args(argv)
    if not browser.available():
        print("chromium/chromedriver missing: run scripts/install_chromium.sh", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    app = create_app(args.lake, users={})
    drv = browser.Driver(args.width, args.height)
    try:
        with browser.serve(app) as url:
            for theme in [t.strip() for t in args.themes.split(",") if t.strip()]:
                drv.get(url + "/health")
                drv.execute_script(f"window.localStorage.setItem('theme-store', JSON.stringify('{theme}'));")
                for stem, path in page_paths():
                    drv.get(url + path + args.query)
                    ms = drv.wait_drawn(timeout=60)
                    drv.set_window_size(args.width, 6000)
                    drv.wait_drawn(timeout=60)
                    height = drv.execute_script(
                        "return Math.max(0, ...Array.from(document.querySelectorAll('.page .card, .page .alert'))"
                        ".map(e => e.getBoundingClientRect().bottom + window.scrollY))")
                    chrome = drv.execute_script("return window.outerHeight - window.innerHeight")
                    drv.set_window_size(args.width, min(max(args.height, int(height) + 24 + int(chrome)), 6000))
                    drv.wait_drawn(timeout=60)
                    name = f"{stem}{'-dark' if theme == 'dark' else ''}.png"
                    drv.save_screenshot(str(out / name))
                    drv.set_window_size(args.width, args.height)
                    errors = drv.console_errors()
                    print(f"{name:28s} drawn in {ms:6.0f} ms" + (f"  console errors: {errors}" if errors else ""))
    finally:
        drv.quit()
    return 0


if __name__ == "__main__":
    sys.exit(main())
