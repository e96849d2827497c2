"""Turn any exception into one line that names the problem (never a bare Java stack trace)."""

from __future__ import annotations

import re

KNOWN = (
    (re.compile(r"TABLE_OR_VIEW_NOT_FOUND\].*?((?:`[^`]+`\.?)+|[\w.]+) cannot be found", re.S), "unknown table {0} (see `lakehouse sql \"SHOW TABLES IN gold\"`)"),
    (re.compile(r"UNRESOLVED_COLUMN.*?name `([^`]+)`", re.S), "unknown column {0}"),
    (re.compile(r"PARSE_SYNTAX_ERROR\]\s*(.*?)(?:\.|\n|SQLSTATE)", re.S), "SQL syntax error: {0}"),
    (re.compile(r"Permission denied", re.S), "permission denied: check that the lake folder is writable"),
)


def describe(exc: BaseException) -> str:
    """One line for the user: the exception's own first line, or a known Spark error rephrased."""
    text = str(exc).strip() or type(exc).__name__
    for pattern, template in KNOWN:
        match = pattern.search(text)
        if match:
            return template.format(*[g.strip().replace("`", "") for g in match.groups()])
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("at ", "Caused by", "java.", "py4j", "Traceback")):
            return line[:500]
    return text.splitlines()[0][:500]
