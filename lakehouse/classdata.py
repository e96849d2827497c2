"""Class-data sharing (AppCDS) for the driver JVM: Spark's and Delta's classes loaded from an archive.

A new JVM spends seconds loading and verifying the ~15,000 classes that Spark, Delta and Scala
need before the first query; that is paid by every `lakehouse run` and every test session. The
JDK can write the classes a run loaded into an archive when the JVM exits
(`-XX:ArchiveClassesAtExit`) and map that archive at the next start (`-XX:SharedArchiveFile`).
Measured on a 2-core machine: a session start plus two small Delta writes and a read took 30.0 s
without the archive and 22.4 s with it (docs/performance.md "Class-data sharing").

The archive is tied to one JVM, one classpath and one set of JVM options, so its file name is a
hash of those. A truncated archive crashes the JVM that maps it, so it is never written in place:
one process at a time (a lock file) has its JVM write `<name>.<pid>.tmp` at exit, waits for that
JVM to exit cleanly, and only then renames it to the archive. A run killed meanwhile leaves only a
temporary file, removed later. Off with `spark.class_data_sharing: false`; not used under
spark-submit (the JVM exists already) or when the archive folder cannot be written.
"""

from __future__ import annotations

import glob
import hashlib
import os
import time
from pathlib import Path

STALE_SECONDS = 3600  # a lock or temporary file older than this belongs to a run that died


def archive_dir() -> Path | None:
    """Where archives live: inside the virtual environment (they belong to its jars), else the user cache."""
    from lakehouse.config import cache_dir

    return cache_dir("cds")


def archive_key(java_version: str, jars: str, java_options: str) -> str:
    """A hash of what an archive depends on: the JVM, pyspark's jars, the extra jars and the JVM options."""
    import pyspark

    jar_dir = Path(pyspark.__file__).parent / "jars"
    listing = sorted(f"{p.name}:{p.stat().st_size}" for p in jar_dir.glob("*.jar")) if jar_dir.is_dir() else []
    extra = sorted(f"{j}:{os.path.getsize(j)}" for j in jars.split(",") if j and os.path.isfile(j))
    text = "\n".join([java_version, pyspark.__version__, *listing, *extra, java_options])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _clean(folder: Path, key: str) -> None:
    """Remove temporary files and locks that a dead run left behind."""
    now = time.time()
    for path in glob.glob(str(folder / f"{key}.*")):
        if path.endswith((".tmp", ".lock")) and now - os.path.getmtime(path) > STALE_SECONDS:
            try:
                os.remove(path)
            except OSError:
                pass


def java_options(java_version: str, jars: str, base_options: str) -> tuple[str, Path | None, Path | None]:
    """(options to add, the temporary archive this JVM writes at exit or None, the archive's final path).

    Maps the archive when it exists; otherwise, if no other process is writing it, asks this JVM
    to write it at exit (see `finish_at_exit`). CDS messages are silenced either way.
    """
    folder = archive_dir()
    if folder is None:
        return "", None, None
    key = archive_key(java_version, jars, base_options)
    final = folder / f"{key}.jsa"
    if final.is_file():
        return f"-XX:SharedArchiveFile={final} -Xshare:auto -Xlog:cds*=off", None, final
    _clean(folder, key)
    try:
        fd = os.open(folder / f"{key}.lock", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except OSError:
        return "", None, final  # another run is writing it
    os.write(fd, str(os.getpid()).encode())
    os.close(fd)
    tmp = folder / f"{key}.{os.getpid()}.tmp"
    return f"-XX:ArchiveClassesAtExit={tmp} -Xlog:cds*=off", tmp, final


def publish(tmp: Path, final: Path, jvm_exit_code: int | None) -> None:
    """After the JVM that wrote `tmp` at exit has exited: make it the archive if that JVM exited
    cleanly, and remove the temporary file and the lock either way (see `session.shutdown`)."""
    try:
        if jvm_exit_code == 0 and tmp.is_file() and tmp.stat().st_size > 0:
            os.replace(tmp, final)
    except OSError:
        pass
    finally:
        for leftover in (tmp, final.with_suffix(".lock")):
            try:
                os.remove(leftover)
            except OSError:
                pass
