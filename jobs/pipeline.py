"""spark-submit entry point: bronze, silver and gold in one Spark session.

    spark-submit --packages io.delta:delta-spark_4.2_2.13:4.4.0 jobs/pipeline.py --landing DIR --lake DIR
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import run_layer  # noqa: E402

if __name__ == "__main__":
    sys.exit(run_layer(None))
