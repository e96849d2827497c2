"""Superset's engine spec for `sparksql://` (loaded by Superset through its entry point only).

Superset picks the first built-in spec whose engine matches a URL's backend, so a `hive://` fix
must come under a backend name of its own; this spec is Superset's Spark spec for `sparksql`.
"""

from __future__ import annotations

from superset.db_engine_specs.spark import SparkEngineSpec


class SparkSQLEngineSpec(SparkEngineSpec):
    """Superset's Spark SQL engine spec for the `sparksql` dialect (lakehouse serve-sql)."""

    engine = "sparksql"
    engine_name = "Apache Spark SQL (lakehouse serve-sql)"

    @classmethod
    def get_view_names(cls, database, inspector, schema):
        """The schema's views, as the dialect's inspector lists them."""
        return set(inspector.get_view_names(schema))
