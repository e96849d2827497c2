"""Superset's engine spec for `sparksql://` (loaded by Superset through its entry point only).

Superset picks the first built-in spec whose engine matches a URL's backend, so a `hive://` fix
must come under a backend name of its own; this spec is Superset's Spark spec for `sparksql`.

Superset 6 also re-writes the SQL of every chart and SQL Lab query with sqlglot, in the dialect it
finds for the backend name in `superset.sql.parse.SQLGLOT_DIALECTS`. A name it does not know gets
sqlglot's generic dialect, which quotes identifiers with double quotes: Spark reads `"dau"` as a
string, so a chart's `SUM("dau")` failed with PARSE_SYNTAX_ERROR. Loading this spec maps `sparksql`
to sqlglot's Spark dialect (backticks), as Superset's own table maps `spark`. (The same can be set in
superset_config.py: `SQLGLOT_DIALECTS_EXTENSIONS = {"sparksql": Dialects.SPARK}`,
with `from sqlglot.dialects.dialect import Dialects`.)
"""

from __future__ import annotations

from sqlglot.dialects.dialect import Dialects
from superset.db_engine_specs.spark import SparkEngineSpec
from superset.sql.parse import SQLGLOT_DIALECTS


class SparkSQLEngineSpec(SparkEngineSpec):
    """Superset's Spark SQL engine spec for the `sparksql` dialect (lakehouse serve-sql)."""

    engine = "sparksql"
    engine_name = "Apache Spark SQL (lakehouse serve-sql)"

    @classmethod
    def get_view_names(cls, database, inspector, schema):
        """The schema's views, as the dialect's inspector lists them."""
        return set(inspector.get_view_names(schema))


SQLGLOT_DIALECTS.setdefault(SparkSQLEngineSpec.engine, Dialects.SPARK)
