#!/usr/bin/env python
"""Superset over `lakehouse serve-sql`: a chart of gold.engagement_daily, checked against gold, and its screenshot.

    .venv/bin/python scripts/superset_screenshot.py --superset-python .venv-superset/bin/python \\
        [--lake DIR] [--out docs/screenshots/superset-gold-chart.png]

What it does, as a Superset user would (docs/bi-tools.md, "Superset"):

1. Takes the lake given, or builds one (`lakehouse generate` + `lakehouse run`) in a temporary folder.
2. Starts `lakehouse serve-sql` on it, with a users file (a user name and password required).
3. Starts Superset from the given Python's venv (apache-superset 6.1.0 with contrib/sqlalchemy-sparksql;
   `make test-superset` makes .venv-superset) in a temporary SUPERSET_HOME: its own
   superset_config.py, a sqlite metadata database, `superset db upgrade`, `superset fab create-admin`,
   `superset init`, `superset run`.
4. Through Superset's REST API: adds the database (`sparksql://...?auth=CUSTOM`), lists the gold
   tables, creates the dataset gold.engagement_daily and a line chart of SUM(dau) by activity_date,
   then renders that chart through the chart data API (the chart's saved query) and checks every
   day's number against gold read with deltalake.
5. With --out: logs in with headless Chromium (Debian's chromium + chromedriver) and saves a PNG of
   the chart's page once the chart is drawn.

Any failure stops it with one line and exit code 2. Everything it starts is stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SQL_USER = "superset"
ADMIN = "admin"
CHART_NAME = "Daily active users (gold.engagement_daily)"
METRIC = {"expressionType": "SIMPLE", "column": {"column_name": "dau"}, "aggregate": "SUM", "label": "SUM(dau)"}


class SupersetError(RuntimeError):
    """A step that failed; the message says which and why, in one line."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path: Path, lines: int = 1) -> str:
    """The last non-empty lines of a log file, joined (for one-line errors)."""
    text = path.read_text(errors="replace") if path.is_file() else ""
    kept = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return " | ".join(kept[-lines:])[:400] if kept else "no output"


def check_superset_python(python: str) -> Path:
    """The `superset` command beside `python`, once that Python is known to import Superset and the dialect."""
    path = Path(python)
    if not path.is_file() or not os.access(path, os.X_OK):
        raise SupersetError(f"--superset-python {python}: not an executable file (make test-superset makes .venv-superset)")
    done = subprocess.run([str(path), "-c", "import importlib.util, superset, lakehouse_sparksql; "
                           "assert importlib.util.find_spec('lakehouse_sparksql_superset'), 'no lakehouse_sparksql_superset'"],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise SupersetError(f"--superset-python {python}: no Superset with contrib/sqlalchemy-sparksql there "
                            f"({tail_text(done.stderr)}); `make test-superset` installs both into .venv-superset")
    command = path.parent / "superset"
    if not command.is_file():
        raise SupersetError(f"--superset-python {python}: no `superset` command beside it ({command})")
    return command


def tail_text(text: str) -> str:
    kept = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return kept[-1][:300] if kept else "no output"


def run_step(cmd: list[str], what: str, log: Path, env: dict | None = None, timeout: float = 900) -> None:
    """Run a command to its end, its output kept in `log`; SupersetError with the log's last line if it fails."""
    with open(log, "a") as fh:
        fh.write(f"$ {' '.join(cmd)}\n")
        fh.flush()
        try:
            done = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=ROOT, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise SupersetError(f"{what}: no end after {timeout:.0f} s (log: {log})") from exc
    if done.returncode != 0:
        raise SupersetError(f"{what} failed (exit code {done.returncode}): {tail(log)}")


def build_lake(workdir: Path, users: int, days: int, say) -> Path:
    """A lake the pipeline builds from generated events, in `workdir`."""
    lakehouse = [sys.executable, "-m", "lakehouse.cli"]
    landing, lake, log = workdir / "landing", workdir / "lake", workdir / "lake.log"
    say(f"building a lake from {users} generated users x {days} days ...")
    run_step([*lakehouse, "generate", "--out", str(landing), "--users", str(users), "--days", str(days), "--seed", "42"],
             "lakehouse generate", log)
    run_step([*lakehouse, "run", "--landing", str(landing), "--lake", str(lake)], "lakehouse run", log)
    return lake


def gold_dau_by_day(lake: Path) -> dict[str, int]:
    """{activity_date ISO: dau} of gold.engagement_daily, read with deltalake (not through Spark)."""
    from deltalake import DeltaTable

    frame = DeltaTable(str(lake / "gold" / "engagement_daily")).to_pandas(columns=["activity_date", "dau"])
    return {str(d)[:10]: int(v) for d, v in zip(frame["activity_date"], frame["dau"])}


@contextmanager
def background(cmd: list[str], log: Path, env: dict | None = None):
    """A long-running process with its output in `log`, stopped (SIGTERM, then SIGKILL) on exit."""
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=ROOT, start_new_session=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(90)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(30)


def wait_for(ready, proc: subprocess.Popen, what: str, log: Path, timeout: float) -> None:
    """Poll `ready()` until true; SupersetError if `proc` ends first or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        if proc.poll() is not None:
            raise SupersetError(f"{what} stopped (exit code {proc.returncode}): {tail(log)}")
        time.sleep(1)
    raise SupersetError(f"{what} was not ready after {timeout:.0f} s: {tail(log)}")


def serve_sql(stack: ExitStack, lake: Path, workdir: Path, password: str, say) -> tuple[int, subprocess.Popen, Path]:
    """Start `lakehouse serve-sql` on the lake with one user; (port, process, log). Waited for by `wait_serve_sql`."""
    from lakehouse.passwords import set_user

    users = workdir / "sql-users"
    set_user(str(users), SQL_USER, password)
    port, log = free_port(), workdir / "serve-sql.log"
    say(f"starting lakehouse serve-sql on 127.0.0.1:{port} ...")
    cmd = [sys.executable, "-m", "lakehouse.cli", "serve-sql", "--lake", str(lake), "--port", str(port),
           "--users-file", str(users)]
    proc = stack.enter_context(background(cmd, log, env={**os.environ, "PYTHONUNBUFFERED": "1"}))
    return port, proc, log


def superset_env(home: Path) -> dict:
    return {**os.environ, "SUPERSET_HOME": str(home), "SUPERSET_CONFIG_PATH": str(home / "superset_config.py"),
            "FLASK_APP": "superset", "PYTHONWARNINGS": "ignore"}


def prepare_superset(command: Path, home: Path, admin_password: str, say) -> dict:
    """A new Superset home: its config, a sqlite metadata database, an admin, the roles. Returns its environment."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "superset_config.py").write_text(
        "# Written by scripts/superset_screenshot.py for one throw-away Superset instance.\n"
        f"SECRET_KEY = {secrets.token_hex(32)!r}\n"
        f"SQLALCHEMY_DATABASE_URI = {'sqlite:///' + str(home / 'superset.db')!r}\n"
        "SUPERSET_WEBSERVER_TIMEOUT = 300\n"
        "SQLLAB_TIMEOUT = 300\n")
    env = superset_env(home)
    log = home / "setup.log"
    say("preparing Superset (db upgrade, create-admin, init: minutes) ...")
    run_step([str(command), "db", "upgrade"], "superset db upgrade", log, env)
    run_step([str(command), "fab", "create-admin", "--username", ADMIN, "--firstname", "Lake", "--lastname", "House",
              "--email", "admin@example.invalid", "--password", admin_password], "superset fab create-admin", log, env)
    run_step([str(command), "init"], "superset init", log, env)
    return env


class Api:
    """Superset's REST API as the admin (JWT from /api/v1/security/login, plus the CSRF token)."""

    def __init__(self, base: str, password: str):
        import requests

        self.base = base
        self.http = requests.Session()
        token = self.call("POST", "/api/v1/security/login",
                          {"username": ADMIN, "password": password, "provider": "db", "refresh": True})["access_token"]
        self.http.headers["Authorization"] = f"Bearer {token}"
        self.http.headers["X-CSRFToken"] = self.call("GET", "/api/v1/security/csrf_token/")["result"]
        self.http.headers["Referer"] = base

    def call(self, method: str, path: str, body: dict | None = None, params: dict | None = None) -> dict:
        resp = self.http.request(method, self.base + path, json=body, params=params, timeout=600)
        if resp.status_code >= 400:
            try:
                detail = resp.json().get("message") or resp.json().get("errors") or resp.text
            except ValueError:
                detail = resp.text
            raise SupersetError(f"Superset {method} {path}: HTTP {resp.status_code}: {str(detail)[:300]}")
        return resp.json()


def chart_params(dataset_id: int) -> dict:
    """The form data of a line chart of SUM(dau) by day, as Explore saves it."""
    return {
        "datasource": f"{dataset_id}__table", "viz_type": "echarts_timeseries_line",
        "x_axis": "activity_date", "time_grain_sqla": "P1D", "metrics": [METRIC], "groupby": [],
        "adhoc_filters": [{"clause": "WHERE", "subject": "activity_date", "operator": "TEMPORAL_RANGE",
                           "comparator": "No filter", "expressionType": "SIMPLE"}],
        "row_limit": 10000, "show_legend": True, "rich_tooltip": True, "markerEnabled": True, "markerSize": 4,
        "x_axis_title": "activity_date", "x_axis_title_margin": 30, "y_axis_title": "daily active users",
        "y_axis_title_margin": 40, "y_axis_format": "SMART_NUMBER", "x_axis_time_format": "smart_date",
    }


def query_context(dataset_id: int) -> dict:
    """The chart's query, as Explore saves it with the chart (what the chart data API runs)."""
    return {
        "datasource": {"id": dataset_id, "type": "table"}, "force": True,
        "queries": [{
            "columns": [{"columnType": "BASE_AXIS", "sqlExpression": "activity_date", "label": "activity_date",
                         "expressionType": "SQL", "timeGrain": "P1D"}],
            "metrics": [METRIC], "orderby": [[METRIC, False]], "row_limit": 10000, "series_limit": 0,
            "filters": [{"col": "activity_date", "op": "TEMPORAL_RANGE", "val": "No filter"}],
            "extras": {"time_grain_sqla": "P1D", "having": "", "where": ""},
            "post_processing": [
                {"operation": "pivot", "options": {"index": ["activity_date"], "columns": [],
                                                   "aggregates": {"SUM(dau)": {"operator": "mean"}},
                                                   "drop_missing_columns": False}},
                {"operation": "flatten"}],
        }],
        "form_data": chart_params(dataset_id), "result_format": "json", "result_type": "full",
    }


def make_chart(api: Api, sql_port: int, sql_password: str, say) -> dict:
    """Database, dataset and chart through the REST API; the chart's data from the chart data API."""
    from urllib.parse import quote

    uri = f"sparksql://{SQL_USER}:{quote(sql_password, safe='')}@127.0.0.1:{sql_port}/gold?auth=CUSTOM"
    api.call("POST", "/api/v1/database/test_connection/", {"sqlalchemy_uri": uri, "database_name": "lakehouse"})
    database = api.call("POST", "/api/v1/database/", {"database_name": "lakehouse", "sqlalchemy_uri": uri,
                                                      "expose_in_sqllab": True})["id"]
    schemas = api.call("GET", f"/api/v1/database/{database}/schemas/")["result"]
    tables = [t["value"] for t in api.call("GET", f"/api/v1/database/{database}/tables/",
                                           params={"q": "(schema_name:gold,force:!t)"})["result"]]
    if "engagement_daily" not in tables:
        raise SupersetError(f"Superset's table list of gold has no engagement_daily: {tables[:10]}")
    say(f"Superset sees {len(tables)} tables in gold; creating the dataset and the chart ...")
    dataset = api.call("POST", "/api/v1/dataset/", {"database": database, "schema": "gold",
                                                    "table_name": "engagement_daily"})["id"]
    columns = {c["column_name"]: c for c in api.call("GET", f"/api/v1/dataset/{dataset}")["result"]["columns"]}
    chart = api.call("POST", "/api/v1/chart/", {
        "slice_name": CHART_NAME, "viz_type": "echarts_timeseries_line", "datasource_id": dataset,
        "datasource_type": "table", "params": json.dumps(chart_params(dataset)),
        "query_context": json.dumps(query_context(dataset))})["id"]
    result = api.call("GET", f"/api/v1/chart/{chart}/data/", params={"force": "true"})["result"][0]
    if result.get("status") != "success" or result.get("error"):
        raise SupersetError(f"the chart's query did not run: {result.get('error')}")
    return {"database": database, "dataset": dataset, "chart": chart, "schemas": schemas, "tables": tables,
            "columns": sorted(columns), "is_dttm": columns["activity_date"]["is_dttm"],
            "sql": result["query"], "rows": result["data"], "status": result["status"]}


def chart_dau_by_day(rows: list[dict]) -> dict[str, int]:
    """{day ISO: SUM(dau)} of the chart data API's rows (epoch milliseconds on the x axis)."""
    from datetime import datetime, timezone

    return {datetime.fromtimestamp(r["activity_date"] / 1000, tz=timezone.utc).date().isoformat(): int(r["SUM(dau)"])
            for r in rows}


def screenshot(base: str, password: str, chart: int, out: Path, say, width: int = 1440, height: int = 900) -> None:
    """Log in as the admin in headless Chromium, open the chart in Explore, save a PNG once it is drawn."""
    from dashboard import browser
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    if not browser.available():
        raise SupersetError("--out needs Debian's chromium and chromium-driver: run scripts/install_chromium.sh "
                            "(make setup-browser)")
    say("taking the screenshot with headless Chromium ...")
    drv = browser.Driver(width, height)
    try:
        wait = WebDriverWait(drv.driver, 300)
        # The login form can be drawn again while the page settles (a first start on a busy
        # machine): typed keys are then lost and the page stays on /login. Type and submit again.
        for attempt in range(3):
            drv.get(base + "/login/")
            if "/login" not in drv.driver.current_url:
                break  # the previous submit went through after all
            user = wait.until(ec.element_to_be_clickable((By.ID, "username")))
            user.clear()
            user.send_keys(ADMIN)
            field = drv.find_element(By.ID, "password")
            field.clear()
            field.send_keys(password + Keys.ENTER)
            try:
                WebDriverWait(drv.driver, 90).until(lambda d: "/login" not in d.current_url)
                break
            except TimeoutException:
                if attempt == 2:
                    raise SupersetError("Superset kept its login page after three submits of the admin's password") from None
        drv.get(f"{base}/explore/?slice_id={chart}")
        drawn = ("const c = document.querySelector('.chart-container canvas, [data-test=\"chart-container\"] canvas');"
                 "return !!c && c.width > 0 && !document.querySelector('.chart-container .loading, [aria-label=\"Loading\"]');")
        try:
            wait.until(lambda d: d.execute_script(drawn))
        except Exception as exc:  # noqa: BLE001 - a timeout, said in one line
            raise SupersetError(f"the chart was not drawn in Explore within 300 s ({drv.current_url})") from exc
        time.sleep(2)  # ECharts' entry animation
        out.parent.mkdir(parents=True, exist_ok=True)
        if not drv.save_screenshot(str(out)):
            raise SupersetError(f"could not save the screenshot to {out}")
    finally:
        drv.quit()


def run(superset_python: str, lake: str | None = None, out: str | None = None, users: int = 200, days: int = 30,
        keep: str | None = None, say=print) -> dict:
    """The whole flow (module docstring); returns what it saw: the chart's rows and SQL, gold's numbers, ids."""
    command = check_superset_python(superset_python)
    if lake is not None and not (Path(lake) / "gold" / "engagement_daily" / "_delta_log").is_dir():
        raise SupersetError(f"--lake {lake}: no gold.engagement_daily there (run `lakehouse run` first)")
    started = time.monotonic()
    workdir = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="lakehouse-superset-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        with ExitStack() as stack:
            lake_path = Path(lake).resolve() if lake else build_lake(workdir, users, days, say)
            sql_password, admin_password = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
            sql_port, sql_proc, sql_log = serve_sql(stack, lake_path, workdir, sql_password, say)
            env = prepare_superset(command, workdir / "superset", admin_password, say)  # while serve-sql starts
            web_port = free_port()
            base = f"http://127.0.0.1:{web_port}"
            web_log = workdir / "superset" / "web.log"
            web = stack.enter_context(background(
                [str(command), "run", "-h", "127.0.0.1", "-p", str(web_port), "--with-threads"], web_log, env))
            wait_for(lambda: _healthy(base), web, "superset run", web_log, 300)
            wait_for(lambda: "read-only:" in sql_log.read_text(errors="replace"), sql_proc,
                     "lakehouse serve-sql", sql_log, 900)
            api = Api(base, admin_password)
            seen = make_chart(api, sql_port, sql_password, say)
            gold = gold_dau_by_day(lake_path)
            chart = chart_dau_by_day(seen["rows"])
            if chart != gold:
                wrong = sorted(d for d in set(chart) | set(gold) if chart.get(d) != gold.get(d))[:5]
                raise SupersetError(f"the chart's numbers differ from gold on {len(wrong)}+ days, e.g. "
                                    f"{[(d, chart.get(d), gold.get(d)) for d in wrong]}")
            say(f"chart data equals gold: {len(chart)} days, SUM(dau) {sum(chart.values())}")
            if out:
                screenshot(base, admin_password, seen["chart"], Path(out), say)
                say(f"screenshot: {out}")
            return {**seen, "chart_dau": chart, "gold_dau": gold, "lake": str(lake_path), "screenshot": out,
                    "seconds": round(time.monotonic() - started, 1)}
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)


def _healthy(base: str) -> bool:
    from urllib.request import urlopen

    try:
        with urlopen(base + "/health", timeout=5) as resp:
            return resp.status == 200
    except OSError:
        return False


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--superset-python", default=os.environ.get("LAKEHOUSE_SUPERSET_PYTHON", ".venv-superset/bin/python"),
                    help="the python of a venv with apache-superset 6.1.0 and contrib/sqlalchemy-sparksql")
    ap.add_argument("--lake", help="a built lake (default: build one from generated events)")
    ap.add_argument("--users", type=int, default=200, help="generated users when building the lake")
    ap.add_argument("--days", type=int, default=30, help="generated days when building the lake")
    ap.add_argument("--out", help="PNG of the chart in Superset (e.g. docs/screenshots/superset-gold-chart.png)")
    ap.add_argument("--keep", help="a folder to keep the work in (logs, Superset home) instead of a temporary one")
    args = ap.parse_args(argv)
    if args.users < 1 or args.days < 1:
        print("superset_screenshot: error: --users and --days must be at least 1", file=sys.stderr)
        return 2
    try:
        seen = run(args.superset_python, args.lake, args.out, args.users, args.days, args.keep)
    except SupersetError as exc:
        print(f"superset_screenshot: error: {exc}", file=sys.stderr)
        return 2
    print(f"chart {seen['chart']} ({seen['seconds']} s); its SQL: {' '.join(seen['sql'].split())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
