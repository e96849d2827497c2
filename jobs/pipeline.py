"""spark-submit entry point: bronze, silver and gold in one Spark session.

    .venv/bin/lakehouse submit [--master spark://HOST:7077] jobs/pipeline.py --landing DIR --lake DIR

(`lakehouse submit` is spark-submit with the Delta jars, SPARK_HOME and the Python filled in:
docs/deploy.md "A standalone Spark cluster".)
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import run_layer  # noqa: E402

if __name__ == "__main__":
    sys.exit(run_layer(None))
