"""The lake lock: one run (pipeline, maintenance, erasure) at a time per lake, and the errors of a run
the user can fix. A module of its own so that the pipeline and maintenance both use it without
importing each other."""

from __future__ import annotations

import contextlib
import os
from typing import Iterator

from lakehouse import objectstore
from lakehouse.tables import is_local, local_path


class PipelineError(RuntimeError):
    """An error the user can fix; the message says what."""


class LakeBusyError(PipelineError):
    """Another run holds the lake."""


@contextlib.contextmanager
def lake_lock(lake_root: str, wait: bool = False, command: str = "a run") -> Iterator[None]:
    """One run at a time per lake: an OS file lock for a local lake, a lock object created with a
    conditional PUT for an `s3://`/`s3a://` lake (`objectstore.lock_object`; `command` names the
    holder in a refusal), none for other URIs (hdfs://...: keep one writer at a time yourself)."""
    if objectstore.is_s3(lake_root):
        try:
            with objectstore.lock_object(lake_root, wait=wait, command=command):
                yield
        except objectstore.LockHeldError as exc:
            raise LakeBusyError(str(exc)) from None
        return
    if not is_local(lake_root):
        yield
        return
    import fcntl

    root = local_path(lake_root)
    try:
        os.makedirs(root, exist_ok=True)
        handle = open(os.path.join(root, "_lakehouse.lock"), "w")
    except OSError as exc:
        raise PipelineError(f"lake folder {lake_root} is not writable: {exc.strerror}") from exc
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError as exc:
            raise LakeBusyError(f"another lakehouse run is using {lake_root}; try again when it ends (or pass --wait)") from exc
        yield
    finally:
        handle.close()
