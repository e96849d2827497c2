"""Object storage: the pipeline on an `s3a://` landing and lake, against a local S3 server.

The tests start moto's server mode (`moto_server`, from PyPI) on a free loopback port, upload a
generated landing, run `lakehouse run` on it as a user does (a subprocess, configured only by the
standard AWS_* variables), and check: the same gold as a local build of the same landing,
exactly-once ingestion over two runs and nothing written by a third, the dashboard's data layer
reading the S3 lake, the lake's lock object (one writer at a time; waiting; stale takeover; a lost
lock noticed) and one-line errors for bad credentials, an unreachable endpoint and a missing
bucket, with nothing written. They take minutes (Spark runs of their own on hadoop-aws), so
`make test` leaves them out and `make test-s3` runs them.
"""

from __future__ import annotations

import collections
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import boto3
import pytest
from deltalake import DeltaTable

from lakehouse import objectstore, pipeline
from lakehouse.generator import generate
from lakehouse.lock import LakeBusyError, lake_lock
from lakehouse.tables import GOLD

pytestmark = pytest.mark.s3

ROOT = Path(__file__).resolve().parent.parent
LAKEHOUSE = [sys.executable, "-m", "lakehouse.cli"]
KEY_ID, SECRET = "lakehouse-test", "s3-test-secret-9f1c2e"  # the secret is looked for in every output
LANDING, LAKE = "s3a://lake/landing", "s3a://lake/lake"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MotoServer:
    """`moto_server` on a free loopback port: started, waited for, always stopped."""

    def __init__(self, log: Path, env: dict | None = None):
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log = open(log, "w")
        exe = Path(sys.executable).with_name("moto_server")
        self.proc = subprocess.Popen([str(exe), "-H", "127.0.0.1", "-p", str(self.port)], stdout=self.log,
                                     stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self.proc.poll() is None:
            with socket.socket() as s:  # a TCP connect: no request (moto counts requests for its auth switch)
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.2)
        self.stop()
        raise AssertionError(f"moto_server did not start: {log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)
        self.log.close()


def aws_env(endpoint: str, **extra: str | None) -> dict:
    """This process's environment without any AWS_* variable, then the test store's (None: unset)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET,
                "AWS_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true",
                "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", "AWS_CONFIG_FILE": "/nonexistent"})
    for k, v in extra.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    return env


def cli(*args: str, env: dict, timeout: float = 1800) -> subprocess.CompletedProcess:
    return subprocess.run([*LAKEHOUSE, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def keys(client, bucket: str, prefix: str) -> dict[str, tuple[str, object]]:
    """Every object under the prefix: key -> (ETag, LastModified)."""
    out = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        out.update({o["Key"]: (o["ETag"], o["LastModified"]) for o in page.get("Contents", [])})
    return out


def watch_command_lines(done: threading.Event, found: list) -> None:
    """Until `done`: every process whose command line holds the secret (`ps` shows them to any user)."""
    while not done.wait(0.5):
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                if SECRET.encode() in cmdline.read_bytes():
                    found.append(cmdline.parent.name)
            except OSError:
                pass


def rs_table(uri: str) -> DeltaTable:
    return DeltaTable(uri, storage_options=objectstore.storage_options(uri))


def sorted_frame(table: DeltaTable):
    df = table.to_pandas()
    return df.sort_values(list(df.columns)).reset_index(drop=True)


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    """The S3 server of the module, with the variables of this process pointing at it meanwhile."""
    server = MotoServer(tmp_path_factory.mktemp("moto") / "moto.log")
    mp = pytest.MonkeyPatch()
    try:
        for k in [k for k in os.environ if k.startswith("AWS_")]:
            mp.delenv(k)
        for k, v in aws_env(server.endpoint).items():
            if k.startswith("AWS_"):
                mp.setenv(k, v)
        client = boto3.client("s3", endpoint_url=server.endpoint, region_name="us-east-1")
        client.create_bucket(Bucket="lake")
        server.client = client
        yield server
    finally:
        mp.undo()
        server.stop()


def _upload(client, folder: Path, prefix: str, skip: tuple[Path, ...] = ()) -> None:
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not any(s in path.parents for s in skip):
            client.upload_file(str(path), "lake", f"{prefix}/{path.relative_to(folder).as_posix()}")


@pytest.fixture(scope="module")
def runs(moto, spark, cfg, tmp_path_factory):
    """Three `lakehouse run`s on S3 (all days but the last; then the last day; then nothing new) and a
    local build of the whole landing (in this process, while the first S3 run goes on)."""
    root = tmp_path_factory.mktemp("s3")
    landing = root / "landing"
    generate(str(landing), users=150, days=20, seed=3)
    held_back = sorted((landing / "events").glob("date=*"))[-1]
    _upload(moto.client, landing, "landing", skip=(held_back,))
    env = aws_env(moto.endpoint)
    args = ("run", "--landing", LANDING, "--lake", LAKE)
    started = time.perf_counter()
    done, on_command_lines = threading.Event(), []
    threading.Thread(target=watch_command_lines, args=(done, on_command_lines), daemon=True).start()
    first = subprocess.Popen([*LAKEHOUSE, *args], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    try:
        pipeline.run(spark, cfg, str(landing), str(root / "local-lake"), progress=lambda m: None)
        out, err = first.communicate(timeout=1800)
    finally:
        done.set()
        if first.poll() is None:
            first.kill()
            first.wait()
    results = [subprocess.CompletedProcess(args, first.returncode, out, err)]
    _upload(moto.client, held_back, f"landing/events/{held_back.name}")
    results.append(cli(*args, env=env))
    before_third = keys(moto.client, "lake", "lake/")
    results.append(cli(*args, env=env))
    return {"landing": landing, "local": root / "local-lake", "held_back": held_back, "runs": results,
            "before_third": before_third, "secret_on_command_lines": on_command_lines, "after_third": keys(moto.client, "lake", "lake/"),
            "seconds": time.perf_counter() - started}


def test_three_runs_on_s3_succeed_and_print_no_secret(runs):
    for i, done in enumerate(runs["runs"], 1):
        assert done.returncode == 0, f"run {i}: {done.stderr[-3000:]}"
        assert SECRET not in done.stdout + done.stderr
    assert runs["secret_on_command_lines"] == []  # not even on the JVM's (PySpark passes its settings there)
    assert "events 19 files" in runs["runs"][0].stdout
    assert "events 1 files" in runs["runs"][1].stdout
    assert "read: no new files" in runs["runs"][2].stdout


def test_gold_on_s3_equals_a_local_build_of_the_same_landing(runs):
    differ, empty = [], []
    for name in GOLD:
        remote = sorted_frame(rs_table(f"{LAKE}/gold/{name}"))
        local = sorted_frame(DeltaTable(str(runs["local"] / "gold" / name)))
        if list(remote.columns) != list(local.columns) or not remote.equals(local):
            differ.append(name)
        if not len(local):
            empty.append(name)
    assert differ == [], "gold tables that differ between the S3 lake and the local lake"
    assert empty == ["quarantine_summary"]  # the generated landing has no bad line; every other table has rows


def test_each_landed_line_is_in_bronze_once_and_the_second_run_ingested_only_the_new_day(runs):
    def lines(table: DeltaTable) -> collections.Counter:
        t = table.to_pyarrow_table(columns=["source_file", "value"]).to_pylist()
        return collections.Counter((r["source_file"].split("/landing/", 1)[1], r["value"]) for r in t)

    remote, local = lines(rs_table(f"{LAKE}/bronze/events")), lines(DeltaTable(str(runs["local"] / "bronze" / "events")))
    assert remote == local and sum(remote.values()) > 5000
    manifest = rs_table(f"{LAKE}/ops/ingest_files").to_pyarrow_table().to_pylist()
    committed = collections.defaultdict(set)
    for r in manifest:
        if r["status"] == "committed":
            committed[r["batch_id"]].add(r["file_path"].split("/landing/", 1)[1])
    new_day = {f"events/{runs['held_back'].name}/{p.name}" for p in runs["held_back"].iterdir()}
    assert sorted(committed) == [1, 2]
    assert committed[2] == new_day and not committed[1] & new_day


def test_a_third_run_with_nothing_new_writes_nothing_and_leaves_no_lock(runs):
    assert runs["after_third"] == runs["before_third"]
    assert not [k for k in runs["after_third"] if k.endswith(objectstore.LOCK_NAME)]


def test_no_secret_is_stored_in_the_lake(runs, moto):
    for key in keys(moto.client, "lake", "lake/"):
        body = moto.client.get_object(Bucket="lake", Key=key)["Body"].read()
        assert SECRET.encode() not in body, key


def test_the_dashboard_reads_gold_from_the_s3_lake(runs):
    from dashboard.config import CONFIG, configure
    from dashboard.data import lake as data

    saved = (CONFIG.lake, CONFIG.users)
    try:
        configure("s3://lake/lake/", users={})  # s3:// as well as s3a://: delta-rs reads both
        data.clear_caches()
        remote = data.gold("engagement_daily").sort_values("activity_date").reset_index(drop=True)
        local = DeltaTable(str(runs["local"] / "gold" / "engagement_daily")).to_pandas(
        ).sort_values("activity_date").reset_index(drop=True)
        assert len(remote) == 20 and remote["dau"].tolist() == local["dau"].tolist()
        assert data.table_version("gold", "engagement_daily") == rs_table(f"{LAKE}/gold/engagement_daily").version()
        assert ("gold", "users") in data.list_tables() and ("ops", "ingest_files") in data.list_tables()
        assert data.table_version("gold", "no_such_table") is None
    finally:
        CONFIG.lake, CONFIG.users = saved
        data.clear_caches()


# ---------------------------------------------------------------- the lock object


def test_a_second_writer_is_refused_while_the_first_holds_the_lock(moto, spark, cfg):
    env = aws_env(moto.endpoint)
    with lake_lock(LAKE, command="test holder"):
        assert objectstore.LOCK_NAME in "".join(keys(moto.client, "lake", "lake/"))
        started = time.perf_counter()
        done = cli("run", "--landing", LANDING, "--lake", LAKE, env=env, timeout=300)
        refused_in = time.perf_counter() - started
        # In this process too, through the pipeline's own lock (not the CLI's look before Spark starts).
        with pytest.raises(LakeBusyError, match="test holder"):
            pipeline.run(spark, cfg, LANDING, LAKE, progress=lambda m: None)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "_lakehouse.lock" in done.stderr and "test holder" in done.stderr
    assert refused_in < 60, "refused before starting Spark"
    assert not [k for k in keys(moto.client, "lake", "lake/") if k.endswith(objectstore.LOCK_NAME)]


def test_of_many_writers_racing_for_the_lock_exactly_one_gets_it(moto):
    lake = "s3a://lake/race"
    for _ in range(5):
        barrier, winners, errors = threading.Barrier(4), [], []

        def contend(i: int) -> None:
            barrier.wait()
            try:
                with objectstore.lock_object(lake):
                    winners.append(i)
                    time.sleep(1.0)
            except objectstore.LockHeldError:
                errors.append(i)

        threads = [threading.Thread(target=contend, args=(i,)) for i in range(4)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        assert len(winners) == 1 and len(errors) == 3


def test_a_waiting_writer_gets_the_lock_when_the_holder_releases_it(moto, monkeypatch):
    monkeypatch.setattr(objectstore, "WAIT_POLL_SECONDS", 0.2)
    lake, released = "s3a://lake/wait", threading.Event()

    def hold() -> None:
        with lake_lock(lake):
            time.sleep(2.0)
        released.set()

    holder = threading.Thread(target=hold)
    holder.start()
    time.sleep(0.5)
    with lake_lock(lake, wait=True):
        assert released.is_set()
    holder.join()


def test_a_stale_lock_is_taken_over_and_a_holder_that_lost_its_lock_fails(moto, monkeypatch):
    lake = "s3a://lake/stale"
    key = f"stale/{objectstore.LOCK_NAME}"
    moto.client.put_object(Bucket="lake", Key=key, Body=b'{"holder": "dead-host:1", "command": "lakehouse run"}')
    with pytest.raises(LakeBusyError, match="dead-host:1"):
        with lake_lock(lake):
            pass
    monkeypatch.setattr(objectstore, "STALE_SECONDS", 1.0)
    monkeypatch.setattr(objectstore, "HEARTBEAT_SECONDS", 0.3)
    time.sleep(1.5)
    with pytest.raises(LakeBusyError, match="taken over by another run"):
        with lake_lock(lake, command="taker"):
            body = moto.client.get_object(Bucket="lake", Key=key)["Body"].read()
            assert b"taker" in body
            time.sleep(1.0)
            assert b"renewed_at" in moto.client.get_object(Bucket="lake", Key=key)["Body"].read()
            moto.client.put_object(Bucket="lake", Key=key, Body=b'{"holder": "intruder:2"}')
            time.sleep(1.0)
    assert b"intruder" in moto.client.get_object(Bucket="lake", Key=key)["Body"].read()  # not deleted by the loser


# ---------------------------------------------------------------- bad input


def _refused(done: subprocess.CompletedProcess, *needles: str) -> None:
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert SECRET not in done.stdout + done.stderr
    for needle in needles:
        assert needle in done.stderr, done.stderr


@pytest.mark.parametrize("extra, needles", [
    ({"AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None}, ["no object-store credentials", "AWS_ACCESS_KEY_ID"]),
    ({"AWS_SECRET_ACCESS_KEY": None}, ["AWS_SECRET_ACCESS_KEY is not set"]),
    ({"AWS_ENDPOINT_URL": "unreachable"}, ["cannot reach the object store at http://127.0.0.1:", "AWS_ENDPOINT_URL"]),
])
def test_missing_credentials_or_an_unreachable_endpoint_fail_in_one_line_writing_nothing(moto, extra, needles):
    if extra.get("AWS_ENDPOINT_URL") == "unreachable":
        extra = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}"}
    started = time.perf_counter()
    done = cli("run", "--landing", LANDING, "--lake", "s3a://lake/bad-lake", env=aws_env(moto.endpoint, **extra),
               timeout=300)
    _refused(done, *needles)
    assert time.perf_counter() - started < 60, "refused before starting Spark"
    assert keys(moto.client, "lake", "bad-lake/") == {}


def test_a_missing_bucket_fails_in_one_line_naming_it(moto):
    done = cli("run", "--landing", "s3a://no-such-bucket/landing", "--lake", "s3a://lake/bad-lake",
               env=aws_env(moto.endpoint), timeout=300)
    _refused(done, "bucket 'no-such-bucket' does not exist", "s3a://no-such-bucket/landing")
    assert keys(moto.client, "lake", "bad-lake/") == {}


@pytest.fixture(scope="module")
def auth_moto(tmp_path_factory):
    """A second S3 server that checks signatures and keys: its first three requests create a user with
    every permission and an access key for it (moto's INITIAL_NO_AUTH_ACTION_COUNT), then a bucket."""
    server = MotoServer(tmp_path_factory.mktemp("moto-auth") / "moto.log", {"INITIAL_NO_AUTH_ACTION_COUNT": "3"})
    try:
        iam = boto3.client("iam", endpoint_url=server.endpoint, region_name="us-east-1",
                           aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap")
        iam.create_user(UserName="lakehouse")
        iam.put_user_policy(UserName="lakehouse", PolicyName="all", PolicyDocument=(
            '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}'))
        key = iam.create_access_key(UserName="lakehouse")["AccessKey"]
        server.key = (key["AccessKeyId"], key["SecretAccessKey"])
        boto3.client("s3", endpoint_url=server.endpoint, region_name="us-east-1", aws_access_key_id=server.key[0],
                     aws_secret_access_key=server.key[1]).create_bucket(Bucket="authed")
        yield server
    finally:
        server.stop()


def test_wrong_credentials_fail_in_one_line_naming_the_variable_and_writing_nothing(auth_moto):
    key_id, secret = auth_moto.key
    good = aws_env(auth_moto.endpoint, AWS_ACCESS_KEY_ID=key_id, AWS_SECRET_ACCESS_KEY=secret)
    objectstore.check_access(["s3a://authed/landing", "s3a://authed/lake"], environ=good)  # the right keys pass
    wrong_secret = cli("run", "--landing", "s3a://authed/landing", "--lake", "s3a://authed/lake",
                       env={**good, "AWS_SECRET_ACCESS_KEY": SECRET}, timeout=300)
    _refused(wrong_secret, "rejected the request signature", "AWS_SECRET_ACCESS_KEY")
    unknown_key = cli("run", "--landing", "s3a://authed/landing", "--lake", "s3a://authed/lake",
                      env={**good, "AWS_ACCESS_KEY_ID": "AKIAUNKNOWN000000000"}, timeout=300)
    _refused(unknown_key, "does not know the access key", "AWS_ACCESS_KEY_ID")
    s3 = boto3.client("s3", endpoint_url=auth_moto.endpoint, region_name="us-east-1", aws_access_key_id=key_id,
                      aws_secret_access_key=secret)
    assert keys(s3, "authed", "") == {}
