"""Gold, health family: what silver quarantined, by feed and reason (docs/spec/metrics.md, "Data quality").
"""

from __future__ import annotations

import pyspark.sql.functions as F
from pyspark.sql import DataFrame

from lakehouse.transforms.common import in_order


def quarantine_summary(quarantine: DataFrame) -> DataFrame:
    """Quarantined lines per feed and reason."""
    return quarantine.groupBy("feed", "reason").agg(F.count(F.lit(1)).cast("long").alias("lines")).transform(in_order("feed", "reason"))
