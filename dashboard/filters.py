"""The dashboard-wide filter state: parse it from / write it to the URL query string.

Pure functions only (no lake access), so pages, the data package and tests share one
definition of what a filter means.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from urllib.parse import parse_qs, urlencode

PRESETS: dict[str, str] = {
    "7d": "Last 7 days",
    "30d": "Last 30 days",
    "90d": "Last 90 days",
    "month": "This month",
    "all": "All time",
    "custom": "Custom",
}
DEFAULT_PRESET = "30d"
GRAINS: dict[str, str] = {"day": "Day", "week": "Week", "month": "Month"}
DIMENSIONS: tuple[str, ...] = ("country", "device", "gender", "age_group")
# URL parameter names of the filter keys
PARAM = {"preset": "range", "start": "start", "end": "end", "grain": "grain", "country": "country",
         "device": "device", "gender": "gender", "age_group": "age"}


def _as_tuple(value) -> tuple[str, ...]:
    """Normalise a dropdown value / URL value ("a,b") into a sorted tuple of strings."""
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        items = value.split(",")
    else:
        items = []
        for v in value:
            items.extend(str(v).split(","))
    return tuple(sorted({i.strip() for i in items if i and i.strip()}))


def _as_date(value) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


@dataclass(frozen=True)
class Filters:
    """A hashable filter selection; dates are resolved against the lake with `resolve`."""

    preset: str | None = None  # None: "custom" when dates are given, else the default preset
    start: date | None = None
    end: date | None = None
    grain: str = "day"
    country: tuple[str, ...] = field(default_factory=tuple)
    device: tuple[str, ...] = field(default_factory=tuple)
    gender: tuple[str, ...] = field(default_factory=tuple)
    age_group: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            object.__setattr__(self, "preset", "custom" if (self.start or self.end) else DEFAULT_PRESET)
        elif self.preset == "custom" and not (self.start or self.end):
            object.__setattr__(self, "preset", "all")
        if self.grain not in GRAINS:
            object.__setattr__(self, "grain", "day")
        for dim in DIMENSIONS:
            object.__setattr__(self, dim, _as_tuple(getattr(self, dim)))
        object.__setattr__(self, "start", _as_date(self.start))
        object.__setattr__(self, "end", _as_date(self.end))

    @property
    def demographic(self) -> bool:
        """True when a user-attribute filter (country, gender, age group) is set."""
        return bool(self.country or self.gender or self.age_group)

    @property
    def user_filtered(self) -> bool:
        """True when any filter below the whole population (demographics or device) is set."""
        return self.demographic or bool(self.device)

    def resolve(self, first: date | None, last: date | None) -> tuple[date, date] | None:
        """The concrete [start, end] of this selection inside the lake's [first, last] (None: empty lake)."""
        if first is None or last is None:
            return None
        if self.preset == "all":
            lo, hi = first, last
        elif self.preset in ("7d", "30d", "90d"):
            n = int(self.preset[:-1])
            lo, hi = last - timedelta(days=n - 1), last
        elif self.preset == "month":
            lo, hi = last.replace(day=1), last
        else:
            lo, hi = self.start or first, self.end or last
            if self.start and self.end and lo > hi:  # two dates typed the wrong way round
                lo, hi = hi, lo
        lo, hi = max(lo, first), min(hi, last)
        if lo > hi:  # selection entirely outside the lake: keep it empty (start after end) but well-formed
            return (hi, hi - timedelta(days=1)) if hi >= first else (first, first - timedelta(days=1))
        return lo, hi

    def is_empty_on(self, first: date | None, last: date | None) -> bool:
        """True when this selection has no day of the lake's [first, last] (or the lake is empty)."""
        rng = self.resolve(first, last)
        return rng is None or rng[0] > rng[1]

    def picker_dates(self, first: date | None, last: date | None) -> tuple[date | None, date | None]:
        """The dates the date picker shows: the resolved range, or the requested dates themselves when
        none of their days is in the lake (so an empty selection stays empty when read back)."""
        rng = self.resolve(first, last)
        if rng is None:
            return None, None
        if rng[0] > rng[1]:
            return self.start, self.end
        return rng

    def with_dates(self, start: date, end: date) -> "Filters":
        """The same selection pinned to explicit dates (what callbacks compute with)."""
        return replace(self, preset="custom", start=start, end=end)

    def key(self) -> tuple:
        """A hashable cache key of everything that changes numbers."""
        return (self.preset, self.start, self.end, self.grain, self.country, self.device, self.gender,
                self.age_group)

    def to_params(self) -> dict[str, str]:
        """URL parameters of the non-default parts of this selection."""
        out: dict[str, str] = {}
        if self.preset == "custom":
            if self.start:
                out["start"] = self.start.isoformat()
            if self.end:
                out["end"] = self.end.isoformat()
        elif self.preset != DEFAULT_PRESET:
            out["range"] = self.preset
        if self.grain != "day":
            out["grain"] = self.grain
        for dim in DIMENSIONS:
            values = getattr(self, dim)
            if values:
                out[PARAM[dim]] = ",".join(values)
        return out

    def to_query(self, extra: dict | None = None) -> str:
        """`?a=b&...` (or '') for links, bookmarks and the address bar: this selection's parameters, then a
        page's own (`extra`; None and '' left out). The one place a dashboard URL's query is built."""
        params = self.to_params()
        params.update({k: str(v) for k, v in (extra or {}).items() if v is not None and v != ""})
        return "?" + urlencode(params, safe=",") if params else ""

    @classmethod
    def from_params(cls, params: dict) -> "Filters":
        """Build from URL parameters (values may be strings or lists, as Dash pages pass them)."""
        def one(name):
            v = params.get(name)
            if isinstance(v, (list, tuple)):
                v = v[0] if v else None
            return v

        start, end = _as_date(one("start")), _as_date(one("end"))
        preset = one("range") or ("custom" if (start or end) else DEFAULT_PRESET)
        return cls(preset=preset, start=start, end=end, grain=one("grain") or "day",
                   **{dim: _as_tuple(params.get(PARAM[dim])) for dim in DIMENSIONS})

    @staticmethod
    def problems(params: dict) -> list[str]:
        """One line per URL value that is not understood (and so ignored): dates, range, granularity."""
        def one(name):
            v = params.get(name)
            return (v[0] if v else None) if isinstance(v, (list, tuple)) else v

        out = []
        for name in ("start", "end"):
            v = one(name)
            if v not in (None, "") and _as_date(v) is None:
                out.append(f"Ignored {name}={v}: not a date (use YYYY-MM-DD).")
        if (v := one("range")) not in (None, "") and v not in PRESETS:
            out.append(f"Ignored range={v}: use one of {', '.join(PRESETS)}.")
        if (v := one("grain")) not in (None, "") and v not in GRAINS:
            out.append(f"Ignored grain={v}: use day, week or month.")
        return out

    @classmethod
    def from_query(cls, query: str) -> "Filters":
        """Build from a raw query string (with or without the leading '?')."""
        return cls.from_params({k: v for k, v in parse_qs(query.lstrip("?")).items()})

    @classmethod
    def from_inputs(cls, start=None, end=None, grain=None, country=None, device=None, gender=None,
                    age_group=None, preset: str = "custom") -> "Filters":
        """Build from the filter bar's component values (dates are already resolved there)."""
        return cls(preset=preset, start=start, end=end, grain=grain or "day", country=country,
                   device=device, gender=gender, age_group=age_group)


def previous_period(lo: date, hi: date) -> tuple[date, date]:
    """The period of equal length just before [lo, hi]."""
    n = (hi - lo).days + 1
    return lo - timedelta(days=n), lo - timedelta(days=1)
