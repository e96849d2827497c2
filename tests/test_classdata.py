"""Class-data sharing: an archive is only ever published whole, and only one process writes it."""

import os

from lakehouse import classdata


def test_an_archive_is_published_only_after_its_jvm_exited_cleanly(tmp_path, monkeypatch):
    monkeypatch.setattr(classdata, "archive_dir", lambda: tmp_path)
    opts, tmp, final = classdata.java_options("openjdk 17", "", "-Xmx1g")
    assert f"-XX:ArchiveClassesAtExit={tmp}" in opts and final.parent == tmp_path
    # A second process meanwhile neither writes nor maps one.
    assert classdata.java_options("openjdk 17", "", "-Xmx1g") == ("", None, final)
    tmp.write_bytes(b"x" * 10)
    classdata.publish(tmp, final, jvm_exit_code=134)  # a JVM that died: its file may be truncated
    assert not final.exists() and not tmp.exists() and not final.with_suffix(".lock").exists()
    opts, tmp, final = classdata.java_options("openjdk 17", "", "-Xmx1g")
    tmp.write_bytes(b"x" * 10)
    classdata.publish(tmp, final, jvm_exit_code=0)
    assert final.read_bytes() == b"x" * 10 and not tmp.exists()
    assert classdata.java_options("openjdk 17", "", "-Xmx1g")[0] == f"-XX:SharedArchiveFile={final} -Xshare:auto -Xlog:cds*=off"


def test_an_archive_belongs_to_one_jvm_and_one_set_of_jvm_options(tmp_path, monkeypatch):
    monkeypatch.setattr(classdata, "archive_dir", lambda: tmp_path)
    keys = {classdata.archive_key("openjdk 17.0.15", "", "-Xmx1g"), classdata.archive_key("openjdk 17.0.16", "", "-Xmx1g"),
            classdata.archive_key("openjdk 17.0.15", "", "-Xmx2g")}
    assert len(keys) == 3


def test_a_lock_left_by_a_run_that_died_long_ago_is_cleared(tmp_path, monkeypatch):
    monkeypatch.setattr(classdata, "archive_dir", lambda: tmp_path)
    key = classdata.archive_key("openjdk 17", "", "")
    lock = tmp_path / f"{key}.lock"
    lock.write_text("1")
    assert classdata.java_options("openjdk 17", "", "")[1] is None  # a fresh lock: someone is writing
    old = lock.stat().st_mtime - classdata.STALE_SECONDS - 10
    os.utime(lock, (old, old))
    assert classdata.java_options("openjdk 17", "", "")[1] is not None
