"""Gold, revenue family: amounts in the reporting currency, revenue, ARPU and ARPPU per date, per user and
per original currency (docs/spec/metrics.md, "Revenue").
"""

from __future__ import annotations

import pyspark.sql.functions as F
from pyspark.sql import DataFrame

from lakehouse.transforms.common import Transform, as_long, in_order, is_success, money_sum, ratio


def to_reporting_currency(rates: DataFrame, reporting: str) -> Transform:
    """Purchases' amounts in the reporting currency (metrics.md "Purchases and revenue").

    `rates` holds one row per (activity_date, currency) with `rate` = units of the reporting currency
    per unit of `currency` (lakehouse.currency.rates_frame); it is small and broadcast. Adds
    `original_amount` (the amount as sent), `currency` (upper-cased and trimmed; the reporting
    currency when missing or blank) and `converted` (a rate was found); `amount` becomes the amount
    in the reporting currency, null when the currency has no rate on that date, so a sum of
    `amount` leaves such purchases out. Only purchases are looked up; other events keep a null
    currency. The result depends only on each event's own date and currency.
    """

    def _transform(events: DataFrame) -> DataFrame:
        code = F.upper(F.trim(F.col("currency")))
        code = F.when(code.isNull() | (code == ""), F.lit(reporting.upper())).otherwise(code)
        keyed = (events.withColumn("currency", F.when(F.col("event") == "purchase", code))
                 .withColumn("original_amount", F.col("amount")))
        r = F.broadcast(rates.select("activity_date", "currency", F.col("rate").alias("_rate")))
        return (
            keyed.join(r, ["activity_date", "currency"], "left")
            .withColumn("converted", F.col("_rate").isNotNull())
            .withColumn("amount", (F.col("original_amount") * F.col("_rate")).cast("double"))
            .drop("_rate")
        )

    return _transform


def revenue_daily(cal: DataFrame, active: DataFrame, days: DataFrame) -> DataFrame:
    """Orders, revenue, buyers, failed payments and conversion/ARPU/ARPPU per date (zero-filled).

    `amount` is summed as given: the gold step passes amounts in the reporting currency (null for a
    currency without a rate, which adds nothing), see `gold.to_reporting_currency`."""
    purchases = active.filter(F.col("event") == "purchase")
    ok = is_success()
    per_day = purchases.groupBy("activity_date").agg(
        F.sum(F.when(ok, 1).otherwise(0)).alias("orders"),
        money_sum(F.when(ok, F.coalesce(F.col("amount"), F.lit(0.0))).otherwise(0.0)).alias("revenue"),
        F.countDistinct(F.when(ok, F.col("user_id"))).alias("buyers"),
        F.sum(F.when(ok, 0).otherwise(1)).alias("failed_payments"),
    )
    dau = days.groupBy("activity_date").agg(F.count(F.lit(1)).alias("dau"))
    out = (
        cal.join(per_day, "activity_date", "left").join(dau, "activity_date", "left")
        .fillna(0, subset=["orders", "buyers", "failed_payments", "dau"]).fillna(0.0, subset=["revenue"])
    )
    return out.select(
        "activity_date",
        as_long("orders"),
        F.col("revenue").cast("double").alias("revenue"),
        as_long("buyers"),
        as_long("failed_payments"),
        ratio(F.col("buyers"), F.col("dau")).alias("conversion_rate"),
        ratio(F.col("revenue"), F.col("dau")).alias("arpu"),
        ratio(F.col("revenue"), F.col("buyers")).alias("arppu"),
    ).transform(in_order("activity_date"))


def user_revenue(active: DataFrame) -> DataFrame:
    """Per user with at least one successful purchase: orders, revenue, first and last purchase dates
    (`amount` in the reporting currency, as for `revenue_daily`)."""
    ok = active.filter((F.col("event") == "purchase") & is_success())
    return ok.groupBy("user_id").agg(
        F.count(F.lit(1)).cast("long").alias("orders"),
        F.coalesce(money_sum(F.col("amount")), F.lit(0.0)).cast("double").alias("revenue"),
        F.min("activity_date").alias("first_purchase_date"),
        F.max("activity_date").alias("last_purchase_date"),
    ).transform(in_order("user_id"))


def revenue_by_currency_daily(money: DataFrame) -> DataFrame:
    """Successful purchases per date and currency as sent: orders, the original amounts, and revenue
    in the reporting currency; `converted` is false (and `revenue` null) for a currency with no rate
    on that date, whose orders are left out of revenue. Only pairs that occur.

    `money` holds active events after `to_reporting_currency` (original_amount, currency, converted).
    """
    ok = money.filter((F.col("event") == "purchase") & is_success())
    per = ok.groupBy("activity_date", "currency").agg(
        F.count(F.lit(1)).cast("long").alias("orders"),
        F.coalesce(money_sum(F.col("original_amount")), F.lit(0.0)).alias("amount"),
        F.coalesce(money_sum(F.col("amount")), F.lit(0.0)).alias("revenue"),
        F.max(F.col("converted").cast("int")).alias("_c"),
    )
    converted = F.col("_c") == 1
    return per.select(
        "activity_date", "currency", "orders",
        F.col("amount").cast("double").alias("amount"),
        F.when(converted, F.col("revenue")).cast("double").alias("revenue"),
        converted.alias("converted"),
    ).transform(in_order("activity_date", "currency"))


def add_user_revenue(previous: DataFrame, new: DataFrame) -> DataFrame:
    """user_revenue after new purchases: orders and (exact) revenue add up, purchase dates widen."""
    return previous.unionByName(new).groupBy("user_id").agg(
        F.sum("orders").cast("long").alias("orders"),
        F.coalesce(money_sum(F.col("revenue")), F.lit(0.0)).cast("double").alias("revenue"),
        F.min("first_purchase_date").alias("first_purchase_date"),
        F.max("last_purchase_date").alias("last_purchase_date"),
    ).transform(in_order("user_id"))
