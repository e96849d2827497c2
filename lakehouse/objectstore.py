"""Lakes and landings on S3 or an S3-compatible store (docs/object-storage.md).

One set of standard variables serves every client: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
`AWS_SESSION_TOKEN`, `AWS_REGION` (or `AWS_DEFAULT_REGION`) and, for an S3-compatible store,
`AWS_ENDPOINT_URL`. From them this module derives Spark's `fs.s3a.*` settings, delta-rs's storage
options and a boto3 client, which checks access before a run writes anything and holds the lake's
lock object (S3 has no atomic rename and Spark's Delta writer takes no lock there: see `lock_object`).

Secrets are passed to the clients only; no message, log line or table of this project holds them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import socket
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Mapping

SCHEMES = ("s3://", "s3a://")
LOCK_NAME = "_lakehouse.lock"
# The lock object is rewritten every HEARTBEAT_SECONDS while its run goes on; one not rewritten for
# STALE_SECONDS belongs to a run that died (killed, machine lost) and the next run takes it over.
HEARTBEAT_SECONDS = 30.0
STALE_SECONDS = 300.0
WAIT_POLL_SECONDS = 5.0


class ObjectStoreError(RuntimeError):
    """The object store cannot be used as configured; the message says what to fix."""


class LockHeldError(ObjectStoreError):
    """Another run holds the lake's lock object."""


def is_s3(uri: str | None) -> bool:
    """True for an `s3://` or `s3a://` URI."""
    return bool(uri) and uri.lower().startswith(SCHEMES)


def split(uri: str) -> tuple[str, str]:
    """(bucket, key prefix without slashes at either end) of an `s3://` or `s3a://` URI."""
    rest = uri.split("://", 1)[1]
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise ObjectStoreError(f"{uri}: no bucket in the URI (expected s3a://BUCKET/PATH)")
    return bucket, prefix.strip("/")


@dataclass(frozen=True)
class S3Settings:
    """The standard AWS variables this project reads (secrets are left out of `repr`)."""

    access_key: str | None = field(default=None, repr=False)
    secret_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)
    region: str | None = None
    endpoint: str | None = None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> "S3Settings":
        """The settings from `environ` (default: this process's environment); empty values count as unset."""
        env = os.environ if environ is None else environ

        def get(*names: str) -> str | None:
            return next((env[n].strip() for n in names if env.get(n, "").strip()), None)

        return cls(get("AWS_ACCESS_KEY_ID"), get("AWS_SECRET_ACCESS_KEY"), get("AWS_SESSION_TOKEN"),
                   get("AWS_REGION", "AWS_DEFAULT_REGION"),
                   (get("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL") or "").rstrip("/") or None)

    @property
    def plain_http(self) -> bool:
        """True when the endpoint is `http://` (a local or private store without TLS)."""
        return bool(self.endpoint) and self.endpoint.lower().startswith("http://")

    @property
    def where(self) -> str:
        """The store as messages name it."""
        return f"the object store at {self.endpoint}" if self.endpoint else "AWS S3"

    def region_or_default(self) -> str | None:
        """The region; `us-east-1` for an S3-compatible endpoint without one (what such stores expect)."""
        return self.region or ("us-east-1" if self.endpoint else None)


def spark_conf(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """`spark.hadoop.fs.s3a.*` settings from the AWS variables (`s3://` is mapped to s3a as well),
    without the credentials: PySpark passes session settings to the JVM on its command line, which
    every user of the machine can read (`hadoop_credentials` go to the running JVM instead)."""
    s = S3Settings.from_environ(environ)
    conf = {"spark.hadoop.fs.s3.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem"}
    if s.access_key and s.secret_key and s.session_token:
        conf["spark.hadoop.fs.s3a.aws.credentials.provider"] = "org.apache.hadoop.fs.s3a.TemporaryAWSCredentialsProvider"
    if s.region_or_default():
        conf["spark.hadoop.fs.s3a.endpoint.region"] = s.region_or_default()
    if s.endpoint:
        conf["spark.hadoop.fs.s3a.endpoint"] = s.endpoint
        conf["spark.hadoop.fs.s3a.path.style.access"] = "true"
        conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] = "false" if s.plain_http else "true"
        # Fail in seconds, not minutes, when the endpoint does not answer.
        conf["spark.hadoop.fs.s3a.attempts.maximum"] = "3"
        conf["spark.hadoop.fs.s3a.retry.limit"] = "3"
    return conf


def hadoop_credentials(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The s3a credential settings (`fs.s3a.access.key`, ...) from the AWS variables, to set on the
    Hadoop configuration of a running JVM; none when the variables hold no key pair (s3a's default
    chain then: environment, instance role). Spark ships that configuration with its tasks, and
    redacts settings named like `secret`, `token` or `access.key` wherever it prints them."""
    s = S3Settings.from_environ(environ)
    if not (s.access_key and s.secret_key):
        return {}
    conf = {"fs.s3a.access.key": s.access_key, "fs.s3a.secret.key": s.secret_key}
    if s.session_token:
        conf["fs.s3a.session.token"] = s.session_token
    return conf


def storage_options(uri: str | None, environ: Mapping[str, str] | None = None) -> dict[str, str] | None:
    """delta-rs storage options for `uri` from the AWS variables; None for a local path."""
    if not is_s3(uri):
        return None
    s = S3Settings.from_environ(environ)
    opts = {}
    if s.access_key and s.secret_key:
        opts.update({"AWS_ACCESS_KEY_ID": s.access_key, "AWS_SECRET_ACCESS_KEY": s.secret_key})
        if s.session_token:
            opts["AWS_SESSION_TOKEN"] = s.session_token
    if s.region_or_default():
        opts["AWS_REGION"] = s.region_or_default()
    if s.endpoint:
        opts["AWS_ENDPOINT_URL"] = s.endpoint
        if s.plain_http:
            opts["AWS_ALLOW_HTTP"] = "true"
    return opts


# ------------------------------------------------------------------ Spark's jars


def hadoop_version() -> str:
    """The Hadoop version of the pyspark install (from its `hadoop-client-api-<version>.jar`)."""
    import pyspark

    jars = os.path.join(os.path.dirname(pyspark.__file__), "jars")
    for name in sorted(os.listdir(jars)) if os.path.isdir(jars) else []:
        if name.startswith("hadoop-client-api-") and name.endswith(".jar"):
            return name[len("hadoop-client-api-"):-len(".jar")]
    raise ObjectStoreError(f"no hadoop-client-api jar in {jars}: cannot tell which hadoop-aws matches this pyspark")


def spark_packages(spark_cfg: Mapping) -> str:
    """The Maven coordinates s3a needs: `spark.s3_packages`, or (`auto`) the hadoop-aws of pyspark's Hadoop."""
    packages = str(spark_cfg.get("s3_packages") or "auto").strip()
    return f"org.apache.hadoop:hadoop-aws:{hadoop_version()}" if packages == "auto" else packages


def _ivy_dir() -> str:
    return os.environ.get("LAKEHOUSE_IVY_DIR", os.path.expanduser("~/.ivy2.5.2"))


def cached_package_jars(packages: str, excludes: Iterable[str] = ()) -> str:
    """The local jar files of `packages` and their runtime dependencies once Spark's Ivy resolution has
    cached them (comma separated), else "". Read from the Ivy cache's module descriptors."""
    ivy, skip = _ivy_dir(), set(excludes)
    found: list[str] = []
    todo = [(*c.strip().split(":")[:3], True) for c in packages.split(",") if c.strip()]
    seen: set[tuple] = set()
    while todo:
        group, artifact, version, transitive = todo.pop()
        if (group, artifact) in seen or f"{group}:{artifact}" in skip:
            continue
        seen.add((group, artifact))
        jar = os.path.join(ivy, "jars", f"{group}_{artifact}-{version}.jar")
        descriptor = os.path.join(ivy, "cache", group, artifact, f"ivy-{version}.xml")
        if not os.path.isfile(jar) or (transitive and not os.path.isfile(descriptor)):
            return ""
        found.append(jar)
        for dep in ET.parse(descriptor).getroot().iter("dependency") if transitive else ():
            confs = {c.split("->")[0].strip() for c in (dep.get("conf") or "").split(";")}
            if confs & {"compile", "runtime"} and dep.get("rev"):
                todo.append((dep.get("org"), dep.get("name"), dep.get("rev"), dep.get("transitive") != "false"))
    return ",".join(found)


# ------------------------------------------------------------------ access check


def _client(s: S3Settings):
    import boto3
    from botocore.config import Config

    # A session of its own: boto3's default session is not safe to make clients from in several threads.
    return boto3.session.Session().client(
        "s3", endpoint_url=s.endpoint, region_name=s.region_or_default() or "us-east-1",
        aws_access_key_id=s.access_key, aws_secret_access_key=s.secret_key, aws_session_token=s.session_token,
        config=Config(s3={"addressing_style": "path" if s.endpoint else "auto"}, connect_timeout=5,
                      read_timeout=30, retries={"max_attempts": 2, "mode": "standard"}),
    )


def explain(exc: Exception, uri: str, s: S3Settings) -> ObjectStoreError:
    """An object store client error as one line that names what to fix (never a secret)."""
    from botocore.exceptions import (ClientError, EndpointConnectionError, NoCredentialsError,
                                     PartialCredentialsError)

    bucket = split(uri)[0]
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return ObjectStoreError(f"no object-store credentials for {uri}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                                "(and AWS_SESSION_TOKEN for temporary credentials)")
    if isinstance(exc, EndpointConnectionError) or type(exc).__name__ in ("ConnectTimeoutError", "ReadTimeoutError"):
        fix = "check AWS_ENDPOINT_URL and that the server is running" if s.endpoint else "check the network"
        return ObjectStoreError(f"cannot reach {s.where} for {uri}: {fix}")
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in ("InvalidAccessKeyId", "InvalidClientTokenId", "UnrecognizedClientException"):
            return ObjectStoreError(f"{s.where} does not know the access key in AWS_ACCESS_KEY_ID ({uri}): fix "
                                    "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
        if code == "SignatureDoesNotMatch":
            return ObjectStoreError(f"{s.where} rejected the request signature for {uri}: AWS_SECRET_ACCESS_KEY is "
                                    "wrong for AWS_ACCESS_KEY_ID")
        if code in ("ExpiredToken", "InvalidToken", "TokenRefreshRequired"):
            return ObjectStoreError(f"the temporary credentials are expired or invalid ({uri}): renew "
                                    "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN")
        if code in ("NoSuchBucket", "404"):
            return ObjectStoreError(f"bucket {bucket!r} does not exist at {s.where}: create it, or fix the "
                                    f"bucket in {uri}")
        if code in ("PermanentRedirect", "301", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException"):
            return ObjectStoreError(f"bucket {bucket!r} is in another region than {s.region_or_default() or 'the default'}: "
                                    "set AWS_REGION to the bucket's region")
        if code in ("AccessDenied", "403", "AllAccessDisabled"):
            return ObjectStoreError(f"access denied to {uri} at {s.where}: give the credentials in AWS_ACCESS_KEY_ID "
                                    "read and write access to it (s3:ListBucket, s3:GetObject, s3:PutObject, s3:DeleteObject)")
        message = str(exc.response.get("Error", {}).get("Message", "")).splitlines()[0:1]
        return ObjectStoreError(f"{s.where} refused a request on {uri}: {code} {''.join(message)}".strip())
    return ObjectStoreError(f"object store error on {uri}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")


def check_access(uris: Iterable[str | None], environ: Mapping[str, str] | None = None) -> None:
    """Raise ObjectStoreError naming the fix unless every `s3://`/`s3a://` URI of `uris` can be listed
    with the configured credentials (one cheap LIST per URI, before Spark starts or anything is written)."""
    remote = list(dict.fromkeys(u for u in uris if is_s3(u)))
    if not remote:
        return
    s = S3Settings.from_environ(environ)
    if bool(s.access_key) != bool(s.secret_key):
        have, missing = (("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY") if s.access_key
                         else ("AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID"))
        raise ObjectStoreError(f"{missing} is not set ({have} is): set both to use {remote[0]}")
    client = _client(s)
    for uri in remote:
        bucket, prefix = split(uri)
        try:
            client.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/" if prefix else "", MaxKeys=1)
        except Exception as exc:  # noqa: BLE001 - every client error becomes one line naming the fix
            raise explain(exc, uri, s) from None


# ------------------------------------------------------------------ the lock object


def lock_uri(lake_root: str) -> str:
    """Where a lake's lock object lives: `<lake>/_lakehouse.lock`."""
    return f"{lake_root.rstrip('/')}/{LOCK_NAME}"


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", "")) or str(response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))


def _holder(client, bucket: str, key: str) -> dict | None:
    """The lock object's content with its `etag` and `age` in seconds; None when there is none."""
    try:
        got = client.get_object(Bucket=bucket, Key=key)
    except Exception as exc:  # noqa: BLE001
        if _error_code(exc) in ("NoSuchKey", "404"):
            return None
        raise
    try:
        info = json.loads(got["Body"].read().decode())
    except ValueError:
        info = {}
    modified = got["LastModified"]
    info.update(etag=got["ETag"], age=max(0.0, (dt.datetime.now(dt.timezone.utc) - modified).total_seconds()))
    return info


def describe_holder(uri: str, info: dict) -> str:
    """One line naming a held lock: who holds it, since when, when it was last renewed."""
    return (f"another lakehouse run ({info.get('holder', 'unknown holder')}, {info.get('command', 'a run')}, "
            f"since {info.get('taken_at', 'unknown')}) holds the lake lock {uri} (renewed {info['age']:.0f} s ago)")


class _Heartbeat(threading.Thread):
    """Rewrites the lock object (If-Match its own ETag) while the run goes on; notes a lock lost to a takeover."""

    def __init__(self, client, bucket: str, key: str, body: dict, etag: str):
        super().__init__(name="lakehouse-lock-heartbeat", daemon=True)
        self.client, self.bucket, self.key, self.body, self.etag = client, bucket, key, body, etag
        self.stop = threading.Event()
        self.lost = False

    def run(self) -> None:
        while not self.stop.wait(HEARTBEAT_SECONDS):
            body = {**self.body, "renewed_at": _now()}
            try:
                self.etag = self.client.put_object(Bucket=self.bucket, Key=self.key, Body=json.dumps(body).encode(),
                                                   IfMatch=self.etag, ContentType="application/json")["ETag"]
            except Exception as exc:  # noqa: BLE001 - a failed renewal is retried; a replaced lock is lost
                if _error_code(exc) in ("PreconditionFailed", "412", "NoSuchKey", "404"):
                    self.lost = True
                    return


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()


@contextlib.contextmanager
def lock_object(lake_root: str, wait: bool = False, command: str = "a run",
                environ: Mapping[str, str] | None = None) -> Iterator[str]:
    """Hold `<lake>/_lakehouse.lock` for the block: created with a conditional PUT (`If-None-Match: *`),
    so of two runs only one can create it; yields the lock's URI.

    Held: LockHeldError naming the holder and the lock's age, or (`wait`) polled until free. While
    held it is renewed every HEARTBEAT_SECONDS; a lock not renewed for STALE_SECONDS was left by a run
    that died and is taken over with a PUT conditional on its ETag (`If-Match`), so of two runs that
    find it stale only one takes it. Released (deleted, If-Match its ETag) at the end of the block;
    a run whose lock was taken over meanwhile fails at the end.
    """
    s = S3Settings.from_environ(environ)
    client = _client(s)
    uri = lock_uri(lake_root)
    bucket, key = split(uri)
    body = {"holder": f"{socket.gethostname()}:{os.getpid()}", "command": command, "taken_at": _now()}
    while True:
        try:
            etag = client.put_object(Bucket=bucket, Key=key, Body=json.dumps(body).encode(), IfNoneMatch="*",
                                     ContentType="application/json")["ETag"]
            break
        except Exception as exc:  # noqa: BLE001
            if _error_code(exc) not in ("PreconditionFailed", "412", "ConditionalRequestConflict", "409"):
                raise explain(exc, uri, s) from None
        info = _holder(client, bucket, key)
        if info is None:
            continue  # released meanwhile: try again
        if info["age"] > STALE_SECONDS:
            try:
                etag = client.put_object(Bucket=bucket, Key=key, Body=json.dumps(body).encode(), IfMatch=info["etag"],
                                         ContentType="application/json")["ETag"]
                break
            except Exception as exc:  # noqa: BLE001 - another run took it over first: look again
                if _error_code(exc) not in ("PreconditionFailed", "412", "NoSuchKey", "404", "ConditionalRequestConflict"):
                    raise explain(exc, uri, s) from None
                continue
        if not wait:
            raise LockHeldError(describe_holder(uri, info) + "; try again when it ends or pass --wait "
                                f"(a lock not renewed for {STALE_SECONDS:.0f} s is taken over)")
        time.sleep(WAIT_POLL_SECONDS)
    beat = _Heartbeat(client, bucket, key, body, etag)
    beat.start()
    try:
        yield uri
    finally:
        beat.stop.set()
        beat.join()
        if not beat.lost:
            with contextlib.suppress(Exception):  # a lock left behind goes stale and is taken over
                client.delete_object(Bucket=bucket, Key=key, IfMatch=beat.etag)
    if beat.lost:
        raise LockHeldError(f"the lake lock {uri} was taken over by another run while this one held it "
                            "(its renewals failed for longer than the stale limit): check the last runs in ops.pipeline_runs")


def peek_lock(lake_root: str, environ: Mapping[str, str] | None = None) -> dict | None:
    """The live (not stale) lock object's content with `etag` and `age`, or None: a check before
    starting Spark, so a run refused by the lock is refused in a second."""
    s = S3Settings.from_environ(environ)
    uri = lock_uri(lake_root)
    try:
        info = _holder(_client(s), *split(uri))
    except Exception as exc:  # noqa: BLE001
        raise explain(exc, uri, s) from None
    return info if info is not None and info["age"] <= STALE_SECONDS else None
