"""Small wording helpers shared by the data layer, the figures and the pages."""

from __future__ import annotations

IRREGULAR = {"entry": "entries", "day": "days", "activity": "activities", "currency": "currencies"}


def plural(word: str) -> str:
    """The plural of a (regular English) noun or noun phrase: its last word takes the plural."""
    head, _, last = word.rpartition(" ")
    if last in IRREGULAR:
        p = IRREGULAR[last]
    elif last.endswith("y") and last[-2:-1] not in "aeiou":
        p = last[:-1] + "ies"
    elif last.endswith(("s", "x", "ch", "sh")):
        p = last + "es"
    else:
        p = last + "s"
    return f"{head} {p}" if head else p


def count(n, word: str, fmt: str = ",.0f") -> str:
    """'1 user', '2,000 users', '0 users': a number with its noun in the right number."""
    try:
        one = float(n) == 1
    except (TypeError, ValueError):
        return f"{n} {plural(word)}"
    return f"{format(n, fmt)} {word if one else plural(word)}"
