"""Segments and clusters: sizes, trend, profiles, clusters on two principal axes, links to their users."""

from dataclasses import replace

import dash
import dash_bootstrap_components as dbc
from dash import Output, State, html

from dashboard import components as c
from dashboard import figures
from dashboard.data.families import segments
from dashboard.filters import Filters

dash.register_page(__name__, path="/segments", name="Segments", order=8, title="Segments · Lakehouse",
                   icon="diagram-3")

PROFILE_COLUMNS = [c.col("segment", "Segment"), c.col("users", "Users", "numeric"),
                   c.col("share", "Share", "numeric", ".1%"), c.col("avg_revenue", "Avg revenue", "numeric", ",.2f"),
                   c.col("avg_active_days", "Avg active days", "numeric", ",.1f"),
                   c.col("avg_age", "Avg age", "numeric", ",.1f"), c.col("avg_orders", "Avg orders", "numeric", ",.2f"),
                   c.col("link", "", "link")]
CLUSTER_COLUMNS = [c.col("cluster", "Cluster", "numeric"), c.col("label", "Label"), c.col("users", "Users", "numeric"),
                   c.col("share", "Share", "numeric", ".1%"), c.col("silhouette", "Silhouette", "numeric", ".2f"),
                   c.col("link", "", "link")]


def layout(theme=None, **query):
    """Segment sizes and profiles, segment trend, cluster map and profiles."""
    args = c.initial_args(query, theme) + (Filters.from_params(query).preset,)
    return c.fill_layout(html.Div([
        c.page_header("Segments", "Rule-based segments and behavioural clusters; open a segment or cluster to "
                      "see its users.", icon="diagram-3", info_key="segment"),
        c.missing_tables_alert(["segment_summary", "cluster_profiles", "users"]),
        c.filter_bar(query, applies=("date", "grain", "country", "gender", "age_group")),
        dbc.Row([
            c.chart_card("seg-sizes", "Segment sizes", "segment", width=5, height=None),
            c.table_card("seg-profiles", "Segment profiles", "segment", width=7),
        ]),
        dbc.Row([c.chart_card("seg-trend", "Active users by segment", "segment", width=12,
                              info_text="Distinct active users per period, by the user's current segment.")]),
        dbc.Row([
            c.chart_card("seg-clusters", "Clusters on the first two principal axes", "cluster", width=7, height=420),
            c.table_card("seg-cluster-table", "Cluster profiles", "silhouette", width=5),
        ]),
    ]), (update_segments, args), (update_clusters, args))


def users_link(f: Filters, preset: str | None = None, **extra) -> str:
    """The Users page for a segment or cluster under the current filters (date range as its preset or dates,
    granularity, country, gender, age group), so that the link keeps what the user selected."""
    if preset and preset != "custom":
        f = Filters(preset=preset, grain=f.grain, country=f.country, gender=f.gender, age_group=f.age_group)
    return "/users" + replace(f, device=()).to_query(extra)


def empty_text(table) -> str:
    """Why the table is empty: no segments in the lake yet, or none under this filter."""
    return "No segments yet (gold.segment_summary / users.segment)" if table is None \
        else "No users in any segment for this filter"


@c.filter_callback(Output({"type": "chart", "id": "seg-sizes"}, "figure"),
                   Output({"type": "table", "id": "seg-profiles"}, "children"),
                   Output({"type": "chart", "id": "seg-trend"}, "figure"), State("f-preset", "value"),
                   ignore=("device",))
def update_segments(f: Filters, t: str, preset=None):
    """Segment sizes, profiles (with links to their users) and trend."""
    seg = segments.segments(f)
    prof = segments.segment_profiles(f)
    merged = None
    if seg is not None:
        extra = [x for x in prof.columns if x == "segment" or x not in seg.columns] if prof is not None else []
        merged = seg.merge(prof[extra], on="segment", how="left") if prof is not None else seg
        merged = merged.assign(link=[("Users →", users_link(f, preset, segment=s)) for s in merged["segment"]])
    rows = c.table_view("seg-profiles", merged, c.money_columns(PROFILE_COLUMNS), empty=empty_text(seg))
    sizes = figures.segment_sizes(seg, t) if seg is not None else figures.missing("segment_summary", t)
    return sizes, rows, figures.segment_trend(segments.segment_trend(f), f.grain, t)


@c.filter_callback(Output({"type": "chart", "id": "seg-clusters"}, "figure"),
                   Output({"type": "table", "id": "seg-cluster-table"}, "children"), State("f-preset", "value"),
                   ignore=("device",))
def update_clusters(f: Filters, t: str, preset=None):
    """Cluster scatter and profiles (with links to their users)."""
    cp = segments.clusters(f)
    if cp is not None:
        cp = cp.assign(link=[("Users →", users_link(f, preset, cluster=int(x))) for x in cp["cluster"]])
    rows = c.table_view("seg-cluster-table", cp, CLUSTER_COLUMNS,
                        empty="No clusters yet (gold.cluster_profiles / users.cluster)" if cp is None
                        else "No users in any cluster for this filter")
    return figures.cluster_scatter(segments.cluster_points(f), cp, t), rows
