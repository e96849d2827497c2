"""The Dash app: create_app(lake_dir) builds it, main() serves it.

Pages live in dashboard/pages (one module each, `dash.register_page`); every
stylesheet, font and script is served from dashboard/assets or the installed
packages, so the dashboard works with no internet.
"""

from __future__ import annotations

import argparse
import logging
import threading
from pathlib import Path

import dash
import dash_bootstrap_components as dbc
from dash import MATCH, ClientsideFunction, Dash, Input, Output, State, ctx, dcc, html, no_update

from . import data, sql_lab
from .auth import install_basic_auth
from .components import fmt_date, range_note
from .config import CONFIG, configure
from .filters import DEFAULT_PRESET, Filters

log = logging.getLogger("dashboard")
HERE = Path(__file__).resolve().parent

INDEX = """<!DOCTYPE html>
<html lang="en" data-bs-theme="light">
    <head>
        {%metas%}
        <title>{%title%}</title>
        {%favicon%}
        {%css%}
        <script>
        try { if (JSON.parse(window.localStorage.getItem("theme-store")) === "dark") {
            document.documentElement.setAttribute("data-bs-theme", "dark"); } } catch (e) {}
        </script>
    </head>
    <body>
        {%app_entry%}
        <footer>
            {%config%}
            {%scripts%}
            {%renderer%}
        </footer>
    </body>
</html>"""

NAV_SECTIONS = (("Dashboards", ("overview", "engagement", "retention", "funnel", "revenue", "demographics",
                                "loyalty", "sessions", "segments")),
                ("Explore", ("users", "sql_lab")),
                ("Operations", ("health",)))


def _pages() -> list[dict]:
    return sorted(dash.page_registry.values(), key=lambda p: p.get("order") or 0)


def _slug(page: dict) -> str:
    return page["module"].split(".")[-1]


def sidebar() -> html.Div:
    """The navigation bar across all pages, grouped like a BI tool's."""
    by_slug = {_slug(p): p for p in _pages()}
    items = []
    for section, slugs in NAV_SECTIONS:
        items.append(html.Div(section, className="nav-section"))
        for s in slugs:
            p = by_slug.get(s)
            if p is None:
                continue
            items.append(dbc.NavLink([html.I(className=f"bi bi-{p.get('icon', 'circle')} me-2"), p["name"]],
                                     href=p["path"], id=f"nav-{s}", className="side-link"))
    return html.Div([
        html.A([html.I(className="bi bi-water me-2"), html.Span("Lakehouse", className="fw-semibold"),
                html.Span(" analytics", className="text-body-secondary")], href="/", className="brand"),
        dbc.Nav(items, vertical=True, pills=True, className="side-nav"),
    ], className="sidebar")


def topbar() -> html.Div:
    """Timezone, data freshness and the light/dark switch."""
    tz = data.reporting_timezone()
    bounds = data.lake_bounds()
    run = data.last_run()
    data_text = f"Data {fmt_date(bounds[0])} – {fmt_date(bounds[1])}" if bounds else "No data yet"
    run_at = run.get("ended_at") or run.get("started_at") if run else None
    return html.Div([
        html.Span([html.I(className="bi bi-calendar3 me-1"), data_text], className="topbar-item",
                  id="topbar-range"),
        html.Span([html.I(className="bi bi-globe2 me-1"), "Timezone: ", html.B(tz, id="topbar-timezone")],
                  className="topbar-item", title="Reporting timezone of the latest pipeline run "
                                                   "(activity dates, hours and weekdays are in this zone)"),
        html.Span([html.I(className="bi bi-clock-history me-1"),
                   f"Last run {run_at:%Y-%m-%d %H:%M} UTC" if run_at is not None else "No pipeline run recorded"],
                  className="topbar-item d-none d-md-inline", id="topbar-run"),
        html.Div([html.I(className="bi bi-sun me-1"),
                  dbc.Switch(id="theme-toggle", value=False, className="d-inline-block mb-0 ms-1 me-0"),
                  html.I(className="bi bi-moon-stars")], className="topbar-item d-flex align-items-center",
                 title="Light / dark mode"),
    ], className="topbar")


def open_banner() -> dbc.Alert | None:
    """A small banner saying the dashboard has no login."""
    if CONFIG.users:
        return None
    return dbc.Alert([html.I(className="bi bi-unlock me-2"),
                      "Open dashboard: no login is configured. Set LAKEHOUSE_DASHBOARD_USERS to require one "
                      "(see docs/dashboard.md)."],
                     id="open-banner", color="warning", dismissable=True, className="open-banner py-1 px-3 small mb-2")


def layout() -> html.Div:
    """The app shell (rebuilt on every full page load so it shows fresh run info)."""
    pages = _pages()
    return html.Div([
        dcc.Store(id="theme-store", storage_type="local", data="light"),
        dcc.Store(id="nav-paths", data=[p["path"] for p in pages]),
        dcc.Store(id="url-query"),  # the filter bar's URL, built by url_query below
        sidebar(),
        html.Div([topbar(), open_banner(), html.Div(dash.page_container, className="page")],
                 className="app-main"),
    ], className="app-shell")


def _register_callbacks(app: Dash) -> None:
    pages = _pages()
    nav_ids = [f"nav-{_slug(p)}" for p in pages]

    app.clientside_callback(
        ClientsideFunction("lakehouse", "theme"),
        Output("theme-toggle", "value"), Output("theme-store", "data"),
        Input("theme-toggle", "value"), Input("theme-store", "data"),
    )
    @app.callback(
        Output("url-query", "data"),
        Input("f-preset", "value"), Input("f-dates", "start_date"), Input("f-dates", "end_date"),
        Input("f-grain", "value"), Input("f-country", "value"), Input("f-device", "value"),
        Input("f-gender", "value"), Input("f-age", "value"), Input("page-params", "data"),
    )
    def url_query(preset, start, end, grain, country, device, gender, age, page_params):
        """The query of the address bar (the filters, then the page's own parameters) and of the nav links
        (the filters), both from Filters.to_query; the browser only puts them in place (syncUrl)."""
        return url_queries(Filters.from_inputs(start, end, grain, country, device, gender, age, preset=preset),
                           page_params)

    app.clientside_callback(
        ClientsideFunction("lakehouse", "syncUrl"),
        [Output(i, "href") for i in nav_ids],
        Input("url-query", "data"), State("nav-paths", "data"),
        prevent_initial_call=True,
    )
    app.clientside_callback(
        ClientsideFunction("lakehouse", "navActive"),
        [Output(i, "active") for i in nav_ids],
        Input("_pages_location", "pathname"), State("nav-paths", "data"),
    )
    app.clientside_callback(
        ClientsideFunction("lakehouse", "figureCsv"),
        Output({"type": "csv-dl", "id": MATCH}, "data"),
        Input({"type": "csv-btn", "id": MATCH}, "n_clicks"),
        State({"type": "chart", "id": MATCH}, "figure"), State({"type": "csv-btn", "id": MATCH}, "id"),
        prevent_initial_call=True,
    )

    @app.callback(Output("f-range-note", "children"), Input("f-dates", "start_date"),
                  Input("f-dates", "end_date"), prevent_initial_call=True)
    def update_range_note(start, end):
        """'No data in this range' (with the lake's range) when the picked dates miss the lake."""
        return range_note(Filters.from_inputs(start, end))

    @app.callback(
        Output("f-preset", "value"), Output("f-dates", "start_date"), Output("f-dates", "end_date"),
        Output("f-grain", "value"), Output("f-country", "value"), Output("f-device", "value"),
        Output("f-gender", "value"), Output("f-age", "value"),
        Input("f-preset", "value"), Input("f-dates", "start_date"), Input("f-dates", "end_date"),
        Input("f-reset", "n_clicks"),
        prevent_initial_call=True,
    )
    def sync_date_range(preset, start, end, _reset):
        """Keep the preset and the date pickers in step; Reset restores every default."""
        keep = [no_update] * 5
        bounds = data.lake_bounds()
        if bounds is None:
            return [no_update] * 8
        trig = ctx.triggered_id
        if trig == "f-reset":
            lo, hi = Filters().resolve(*bounds)
            return [DEFAULT_PRESET, lo.isoformat(), hi.isoformat(), "day", [], [], [], []]
        if trig == "f-preset":
            if preset == "custom":
                return [no_update] * 8
            lo, hi = Filters(preset=preset).resolve(*bounds)
            return [no_update, lo.isoformat(), hi.isoformat()] + keep
        # the user picked dates: keep the preset when they still match it, else switch to custom
        if preset and preset != "custom":
            lo, hi = Filters(preset=preset).resolve(*bounds)
            if (start or "")[:10] == lo.isoformat() and (end or "")[:10] == hi.isoformat():
                return [no_update] * 8
        return ["custom", no_update, no_update] + keep


def url_queries(f: Filters, page_params: dict | None) -> dict[str, str]:
    """{"page": query of the address bar, "nav": query of the links to other pages} for a selection."""
    return {"page": f.to_query(page_params), "nav": f.to_query()}


def create_app(lake_dir: str | Path, users: dict[str, str] | None = None, warm: bool = True) -> Dash:
    """Build the Dash app over the lake at lake_dir (users: name -> werkzeug hash; default from env)."""
    configure(lake_dir, users)
    app = Dash(
        __name__,
        use_pages=True,
        pages_folder=str(HERE / "pages"),
        assets_folder=str(HERE / "assets"),
        suppress_callback_exceptions=True,
        title="Lakehouse analytics",
        update_title=None,
        serve_locally=True,
        # pages compute their first figures in layout(): they need the theme the browser remembers
        routing_callback_inputs={"theme": State("theme-store", "data")},
    )
    app.index_string = INDEX
    app.layout = layout
    _register_callbacks(app)
    install_basic_auth(app.server, CONFIG.users)
    if warm:
        threading.Thread(target=warm_up, name="dashboard-warm-up", daemon=True).start()
    return app


def warm_up() -> None:
    """Load tables, indexes and the SQL Lab database before the first visitor needs them."""
    data.warm_up()
    try:
        sql_lab.connect(data.sql_tables()).close()
    except Exception as exc:  # noqa: BLE001 - warming is best effort
        log.warning("SQL Lab warm-up failed: %s", exc)


def main(lake: str | Path, host: str = "127.0.0.1", port: int = 8050, debug: bool = False) -> None:
    """Serve the dashboard (what `lakehouse dashboard --lake DIR` runs)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(lake)
    if CONFIG.users:
        log.info("login required for %d user(s): %s", len(CONFIG.users), ", ".join(sorted(CONFIG.users)))
    else:
        log.warning("the dashboard is OPEN: no login configured (set LAKEHOUSE_DASHBOARD_USERS=user:<hash>,...); "
                    "serving on %s only", host)
        if host not in ("127.0.0.1", "localhost", "::1"):
            log.warning("binding an open dashboard to %s exposes it to the network", host)
    log.info("lake %s -> http://%s:%d/", CONFIG.lake, host, port)
    app.run(host=host, port=port, debug=debug)


def cli(argv: list[str] | None = None) -> None:
    """`python -m dashboard.app --lake DIR [--host 127.0.0.1] [--port 8050]`."""
    ap = argparse.ArgumentParser(prog="python -m dashboard.app", description="Serve the lakehouse dashboard.")
    ap.add_argument("--lake", required=True, help="lake directory (holds gold/, ops/ ...)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8050)
    ap.add_argument("--debug", action="store_true")
    args = ap.parse_args(argv)
    main(lake=args.lake, host=args.host, port=args.port, debug=args.debug)


if __name__ == "__main__":
    cli()
