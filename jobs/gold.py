"""spark-submit entry point: the gold layer only."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import run_layer  # noqa: E402

if __name__ == "__main__":
    sys.exit(run_layer("gold"))
