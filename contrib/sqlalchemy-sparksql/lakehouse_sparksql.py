"""`sparksql://`: PyHive's Hive dialect with the table names Spark's Thrift server gives.

Spark answers `SHOW TABLES` with (namespace, tableName, isTemporary), where Hive answers with the
table name alone; PyHive's dialect takes the first column, so tools that list tables through
SQLAlchemy (Superset's table picker and dataset creation) see the schema name instead of the
tables. This dialect takes `tableName`. Everything else is PyHive's `hive://` dialect: the same
URL options (`?auth=CUSTOM` with a user and password, `?auth=NOSASL`...). See the lakehouse's
docs/bi-tools.md.
"""

from __future__ import annotations

from pyhive.sqlalchemy_hive import HiveDialect
from sqlalchemy import text


class SparkSQLDialect(HiveDialect):
    """PyHive's HiveDialect, named `sparksql`, reading table names from Spark's `SHOW TABLES`."""

    name = "sparksql"
    supports_statement_cache = True  # compiles SQL exactly as PyHive's dialect does

    def get_table_names(self, connection, schema=None, **kw):
        """Table names of `schema` (the session's database when None), temporary views left out."""
        query = "SHOW TABLES" + (" IN " + self.identifier_preparer.quote_identifier(schema) if schema else "")
        return [row[1] if len(row) > 1 else row[0] for row in connection.execute(text(query))
                if not (len(row) > 2 and row[2] is True)]

    def get_view_names(self, connection, schema=None, **kw):
        """View names of `schema` (Spark's `SHOW VIEWS`)."""
        query = "SHOW VIEWS" + (" IN " + self.identifier_preparer.quote_identifier(schema) if schema else "")
        return [row[1] if len(row) > 1 else row[0] for row in connection.execute(text(query))]
