"""Pure DataFrame -> plotly figure functions (no lake access, no Dash), one module per metric family.

`core` holds what every chart shares: the `Fig` class (plain plotly JSON), the CSV table a figure
carries, empty states, time axes, partial-period shading, lines and bars, the KPI sparkline.
`families/<family>` draws one metric family (named as dashboard.data.families), `health` the pipeline
health page. Pages call `figures.<function>(...)`; every function is re-exported here.
"""

from __future__ import annotations

from .core import (
    ARRAY_KEYS, FMT, MAX_PERIOD_LABELS, NO_DATA, Fig, add_bars, add_line, attach_csv, base, base2, csv_of, empty,
    hover_fmt, is_empty, jsonable, jsonable_dict, label_margin, missing, period_ticks, ranked_bars, rgba,
    shade_partial, sparkline_svg, time_axis, titled, unit_suffix,
)
from .families.content import QUIZ_PAGE_SIZE, WEEKDAYS, course_completion, hourly_heatmap, quiz_pages, quizzes, top_bar
from .families.demographics import AGE_ORDER, MEASURES, by_dimension, demographic_heatmap
from .families.engagement import active_users, new_vs_existing, stickiness
from .families.funnel import funnel, funnel_by_device, funnel_rate
from .families.lifecycle import lifecycle
from .families.loyalty import balance_histogram, outstanding, participation, points
from .families.retention import retention_curve, retention_heatmap
from .families.revenue import (
    arpu, conversion, conversion_by_device, failed_payments, pareto, revenue_by_currency, revenue_orders,
)
from .families.segments import cluster_scatter, segment_sizes, segment_trend
from .families.sessions import session_length, sessions
from .families.users import user_activity
from .health import durations, quarantine

__all__ = [
    "AGE_ORDER", "ARRAY_KEYS", "FMT", "MAX_PERIOD_LABELS", "MEASURES", "NO_DATA", "QUIZ_PAGE_SIZE", "WEEKDAYS", "Fig",
    "active_users", "add_bars", "add_line", "arpu", "attach_csv", "balance_histogram", "base", "base2",
    "by_dimension", "cluster_scatter", "conversion", "conversion_by_device", "course_completion", "csv_of",
    "demographic_heatmap", "durations", "empty", "failed_payments", "funnel", "funnel_by_device", "funnel_rate",
    "hourly_heatmap", "hover_fmt", "is_empty", "jsonable", "jsonable_dict", "label_margin", "lifecycle", "missing",
    "new_vs_existing", "outstanding", "pareto", "participation", "period_ticks", "points", "quarantine", "quiz_pages",
    "quizzes", "ranked_bars", "retention_curve", "retention_heatmap", "revenue_by_currency", "revenue_orders", "rgba",
    "segment_sizes", "segment_trend", "session_length", "sessions", "shade_partial", "sparkline_svg", "stickiness",
    "time_axis", "titled", "top_bar", "unit_suffix", "user_activity",
]
