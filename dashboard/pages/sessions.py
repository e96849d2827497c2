"""Sessions and content: sessions, session length, top events and pages, weekday x hour, quizzes, courses."""

import dash
import dash_bootstrap_components as dbc
from dash import Output, html

from dashboard import components as c
from dashboard import data, figures

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
            c.chart_card("ses-quiz", "Quiz participation and pass rate", "quiz", width=6),
            c.chart_card("ses-courses", "Course completion", "course_completion", width=6, height=None),
        ]),
    ]), (update_sessions, args), (update_content, args))


@c.page_callback(Output({"type": "chart", "id": "ses-sessions"}, "figure"), Output({"type": "chart", "id": "ses-length"}, "figure"),
          *c.FILTER_INPUTS)
def update_sessions(start, end, grain, country, device, gender, age, theme):
    """Sessions per period and their length (length needs sessions_daily: no user filters)."""
    f = c.filters_from(start, end, grain, country, device, gender, age)
    t = c.theme_of(theme)
    df = data.sessions(f)
    if df is None:
        miss = c.absent("sessions_daily", t)
        return miss, miss
    return figures.sessions(df, f.grain, t), figures.session_length(df, f.grain, t)


@c.page_callback(Output({"type": "chart", "id": "ses-events"}, "figure"), Output({"type": "chart", "id": "ses-pages"}, "figure"),
          Output({"type": "chart", "id": "ses-uninstalls"}, "figure"),
          Output({"type": "chart", "id": "ses-purchases"}, "figure"),
          Output({"type": "chart", "id": "ses-quiz"}, "figure"), Output({"type": "chart", "id": "ses-courses"}, "figure"),
          *c.FILTER_INPUTS)
def update_content(start, end, grain, country, device, gender, age, theme):
    """Content charts (date range only: these tables are not split by user)."""
    f = c.filters_from(start, end, grain, country, device, gender, age)
    t = c.theme_of(theme)

    def or_missing(name, fig_fn, df):
        return figures.missing(name, t) if df is None and not data.has(name) else fig_fn(df)

    return (
        or_missing("event_counts_daily", lambda d: figures.top_bar(d, "event", "events", "events", "events", t),
                   data.top_events(f)),
        or_missing("page_views_daily", lambda d: figures.top_bar(d, "page", "views", "views", "views", t),
                   data.top_pages(f)),
        or_missing("hourly_activity", lambda d: figures.hourly_heatmap(d, "uninstalls", t),
                   data.hourly("app_uninstall")),
        or_missing("hourly_activity", lambda d: figures.hourly_heatmap(d, "purchases", t), data.hourly("purchase")),
        or_missing("quiz_daily", lambda d: figures.quizzes(d, t), data.quizzes(f)),
        or_missing("course_progress", lambda d: figures.course_completion(d, t), data.courses()),
    )
