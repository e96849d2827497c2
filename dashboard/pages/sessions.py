"""Sessions and content: sessions, session length, top events and pages, weekday x hour, quizzes, courses."""

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, html

from dashboard import components as c
from dashboard import figures
from dashboard.data import lake
from dashboard.data.families import content, sessions
from dashboard.filters import Filters

dash.register_page(__name__, path="/sessions", name="Sessions & content", order=7,
                   title="Sessions & content · Lakehouse", icon="clock")


def layout(theme=None, **query):
    """Session charts, top events/pages, heatmaps of uninstalls and purchases, learning content."""
    args = c.initial_args(query, theme)
    return c.fill_layout(html.Div([
        c.page_header("Sessions & content", "How long people stay, what they do and when.", icon="clock",
                      info_key="sessions"),
        c.missing_tables_alert(["sessions_daily", "event_counts_daily", "page_views_daily", "hourly_activity",
                                "quiz_daily", "course_progress"]),
        c.filter_bar(query),
        dbc.Row([
            c.chart_card("ses-sessions", "Sessions", "sessions", width=6),
            c.chart_card("ses-length", "Session length and daily time per user", "avg_session_seconds", width=6,
                         info_text="Average session length (last minus first event of a session) and average "
                                   "daily time per active user (total session time / users with a session)."),
        ]),
        dbc.Row([
            c.chart_card("ses-events", "Top events", "event_counts", width=6, height=None),
            c.chart_card("ses-pages", "Top pages", "page_views", width=6, height=None),
        ]),
        dbc.Row([
            c.chart_card("ses-uninstalls", "Uninstalls by weekday and hour", "hourly", width=6, height=300),
            c.chart_card("ses-purchases", "Purchases by weekday and hour", "hourly", width=6, height=300),
        ]),
        dbc.Row([
            c.chart_card("ses-quiz", "Quiz participation and pass rate", "quiz", width=6, height=360,
                         footer=dbc.Pagination(id="ses-quiz-page", max_value=1, active_page=1, size="sm",
                                               fully_expanded=False, previous_next=True,
                                               className="mb-0 justify-content-center")),
            c.chart_card("ses-courses", "Course completion", "course_completion", width=6, height=None),
        ]),
    ]), (update_sessions, args), (update_content, args), (update_quizzes, args + (1,)))


@c.filter_callback(Output({"type": "chart", "id": "ses-sessions"}, "figure"),
                   Output({"type": "chart", "id": "ses-length"}, "figure"))
def update_sessions(f: Filters, t: str):
    """Sessions per period and their length (length needs sessions_daily: no user filters)."""
    df = sessions.sessions(f)
    if df is None:
        miss = c.absent("sessions_daily", t)
        return miss, miss
    return figures.sessions(df, f.grain, t), figures.session_length(df, f.grain, t)


@c.filter_callback(Output({"type": "chart", "id": "ses-events"}, "figure"),
                   Output({"type": "chart", "id": "ses-pages"}, "figure"),
                   Output({"type": "chart", "id": "ses-uninstalls"}, "figure"),
                   Output({"type": "chart", "id": "ses-purchases"}, "figure"),
                   Output({"type": "chart", "id": "ses-courses"}, "figure"))
def update_content(f: Filters, t: str):
    """Content charts (date range only: these tables are not split by user)."""

    def or_missing(name, fig_fn, df):
        return figures.missing(name, t) if df is None and not lake.has(name) else fig_fn(df)

    return (
        or_missing("event_counts_daily", lambda d: figures.top_bar(d, "event", "events", "events", "events", t),
                   content.top_events(f)),
        or_missing("page_views_daily", lambda d: figures.top_bar(d, "page", "views", "views", "views", t),
                   content.top_pages(f)),
        or_missing("hourly_activity", lambda d: figures.hourly_heatmap(d, "uninstalls", t),
                   content.hourly("app_uninstall")),
        or_missing("hourly_activity", lambda d: figures.hourly_heatmap(d, "purchases", t), content.hourly("purchase")),
        or_missing("course_progress", lambda d: figures.course_completion(d, t), content.courses()),
    )


@c.filter_callback(Output({"type": "chart", "id": "ses-quiz"}, "figure"), Output("ses-quiz-page", "max_value"),
                   Input("ses-quiz-page", "active_page"))
def update_quizzes(f: Filters, t: str, page):
    """One page of quizzes, the most attempted first; the pager reaches the rest."""
    q = content.quizzes(f)
    if q is None and not lake.has("quiz_daily"):
        return figures.missing("quiz_daily", t), 1
    return figures.quizzes(q, t, page or 1), figures.quiz_pages(q)
