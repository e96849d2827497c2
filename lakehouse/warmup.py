"""Write the driver JVM's class-data archive now (setup runs `python -m lakehouse.warmup` once).

A small pipeline run over generated data in a temporary folder, so that the archive
(lakehouse/classdata.py) holds the classes every layer needs. Kept apart from `classdata`, which the
session builder imports: this module imports the pipeline, which imports the session builder.
"""

from __future__ import annotations

import tempfile

from lakehouse import generator, pipeline
from lakehouse.config import load_config
from lakehouse.session import build_spark


def warm() -> str:
    """Run the pipeline twice on 30 generated users x 4 days; the archive is written when the JVM exits."""
    cfg = load_config()
    with tempfile.TemporaryDirectory(prefix="lakehouse-cds-") as tmp:
        generator.generate(f"{tmp}/landing", users=30, days=4, seed=1)
        spark = build_spark(cfg)
        pipeline.run(spark, cfg, f"{tmp}/landing", f"{tmp}/lake", progress=None)
        pipeline.run(spark, cfg, f"{tmp}/landing", f"{tmp}/lake", progress=None)
    return "class-data archive: written when this process exits"


if __name__ == "__main__":
    print(warm())
