"""`python -m build` makes the wheel that Databricks and Kubernetes deployments install (docs/deploy.md).

The build runs in its own isolated environment, with setuptools fetched from PyPI as `python -m build` does.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ["pyproject.toml", "README.md", "lakehouse", "dashboard", "conf/base", "conf/log4j2.properties"]


def test_the_wheel_builds_with_the_package_the_server_sources_and_the_configuration(tmp_path):
    src = tmp_path / "src"
    for name in SOURCES:  # a copy, so that the build leaves nothing in the work tree
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    done = subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(tmp_path / "dist"),
                           str(src)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    [wheel] = (tmp_path / "dist").glob("lakehouse-*-py3-none-any.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for module in ("lakehouse/cli.py", "lakehouse/pipeline.py", "lakehouse/serve.py", "lakehouse/session.py",
                   "lakehouse/java/lakehouse/serve/ReadOnlyExtension.java",
                   "lakehouse/java/lakehouse/serve/ReadOnlyThriftServer.java",
                   "lakehouse/java/lakehouse/serve/PasswordFileAuthenticator.java", "dashboard/app.py"):
        assert module in names, module
    data = wheel.name.split("-py3")[0] + ".data/data/share/lakehouse/conf"
    for conf in ("base/lakehouse.yaml", "base/spark.yaml", "base/expectations.yaml", "log4j2.properties"):
        assert f"{data}/{conf}" in names, conf
    assert not any(n.startswith(("tests/", "jobs/", "bench/")) for n in names)
    dist_info = wheel.name.split("-py3")[0] + ".dist-info"
    entry_points = zipfile.ZipFile(wheel).read(f"{dist_info}/entry_points.txt").decode()
    assert "lakehouse = lakehouse.cli:main" in entry_points
    metadata = zipfile.ZipFile(wheel).read(f"{dist_info}/METADATA").decode()
    assert "Requires-Dist: pyspark==4.2.0" in metadata and "Requires-Dist: delta-spark==4.4.0" in metadata
