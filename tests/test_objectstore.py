"""The object-store settings without a server: what Spark and delta-rs get from the AWS_* variables,
the hadoop-aws jars found in an Ivy cache, and the one-line errors (tests/test_s3.py runs them
against a local S3 server)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

from lakehouse import objectstore
from lakehouse.tables import Lake

ENV = {"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "very-secret", "AWS_REGION": "eu-west-1",
       "AWS_ENDPOINT_URL": "http://127.0.0.1:9000/"}


def test_spark_gets_s3a_settings_for_a_plain_http_endpoint():
    conf = objectstore.spark_conf(ENV)
    assert conf["spark.hadoop.fs.s3a.endpoint"] == "http://127.0.0.1:9000"
    assert conf["spark.hadoop.fs.s3a.endpoint.region"] == "eu-west-1"
    assert conf["spark.hadoop.fs.s3a.path.style.access"] == "true"
    assert conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] == "false"
    assert conf["spark.hadoop.fs.s3.impl"] == "org.apache.hadoop.fs.s3a.S3AFileSystem"
    # No credential among the settings PySpark puts on the JVM's command line: they go to the running JVM.
    assert not {"AKIDEXAMPLE", "very-secret"} & set(conf.values())
    assert objectstore.hadoop_credentials(ENV) == {"fs.s3a.access.key": "AKIDEXAMPLE", "fs.s3a.secret.key": "very-secret"}


def test_real_s3_with_a_session_token_and_no_endpoint():
    env = {"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b", "AWS_SESSION_TOKEN": "t", "AWS_DEFAULT_REGION": "us-west-2"}
    conf = objectstore.spark_conf(env)
    assert objectstore.hadoop_credentials(env)["fs.s3a.session.token"] == "t"
    assert conf["spark.hadoop.fs.s3a.aws.credentials.provider"].endswith("TemporaryAWSCredentialsProvider")
    assert conf["spark.hadoop.fs.s3a.endpoint.region"] == "us-west-2"
    assert not any(k.endswith((".endpoint", "path.style.access", "ssl.enabled")) for k in conf)
    assert objectstore.storage_options("s3://b/lake", env) == {
        "AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b", "AWS_SESSION_TOKEN": "t", "AWS_REGION": "us-west-2"}


def test_delta_rs_gets_the_same_store_and_plain_http_only_for_an_http_endpoint():
    assert objectstore.storage_options("s3a://lake/x", ENV) == {
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "very-secret", "AWS_REGION": "eu-west-1",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9000", "AWS_ALLOW_HTTP": "true"}
    https = objectstore.storage_options("s3a://lake/x", {**ENV, "AWS_ENDPOINT_URL": "https://minio.example"})
    assert "AWS_ALLOW_HTTP" not in https
    assert objectstore.storage_options("/data/lake", ENV) is None
    assert Lake("/data/lake").rs_options is None


def test_no_credentials_leave_the_default_chains_and_an_endpoint_defaults_the_region():
    env = {"AWS_ENDPOINT_URL": "http://store:9000"}
    assert objectstore.storage_options("s3://b", env) == {"AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": "http://store:9000",
                                                          "AWS_ALLOW_HTTP": "true"}
    assert not any("key" in k for k in objectstore.spark_conf(env)) and objectstore.hadoop_credentials(env) == {}


def test_settings_never_show_a_secret():
    settings = objectstore.S3Settings.from_environ(ENV)
    assert "very-secret" not in repr(settings) and "AKIDEXAMPLE" not in repr(settings)


def test_uris():
    assert objectstore.is_s3("s3a://b/x") and objectstore.is_s3("S3://b") and not objectstore.is_s3("/x")
    assert not objectstore.is_s3("hdfs://n/x") and not objectstore.is_s3(None)
    assert objectstore.split("s3a://bucket/a/b/") == ("bucket", "a/b")
    assert objectstore.lock_uri("s3a://bucket/lake/") == "s3a://bucket/lake/_lakehouse.lock"


def test_the_hadoop_aws_jars_come_from_the_ivy_cache_once_resolved(tmp_path, monkeypatch):
    monkeypatch.setenv("LAKEHOUSE_IVY_DIR", str(tmp_path))
    coords = "org.apache.hadoop:hadoop-aws:3.5.0"
    assert objectstore.cached_package_jars(coords) == ""  # not resolved yet: Spark resolves it
    (tmp_path / "jars").mkdir()
    descriptor = tmp_path / "cache" / "org.apache.hadoop" / "hadoop-aws" / "ivy-3.5.0.xml"
    descriptor.parent.mkdir(parents=True)
    descriptor.write_text("""<ivy-module><dependencies>
      <dependency org="org.apache.hadoop" name="hadoop-common" rev="3.5.0" conf="provided->compile(*)"/>
      <dependency org="software.amazon.awssdk" name="bundle" rev="2.35.4" transitive="false" conf="compile->compile(*)"/>
      <dependency org="org.assertj" name="assertj-core" rev="3.12.2" conf="test->runtime(*)"/>
      <dependency org="org.wildfly.openssl" name="wildfly-openssl" rev="2.2.5.Final" conf="runtime->compile(*)"/>
    </dependencies></ivy-module>""")
    wanted = ["org.apache.hadoop_hadoop-aws-3.5.0.jar", "software.amazon.awssdk_bundle-2.35.4.jar"]
    for name in wanted:
        (tmp_path / "jars" / name).write_bytes(b"jar")
    assert objectstore.cached_package_jars(coords) == ""  # wildfly's jar is missing
    (tmp_path / "jars" / "org.wildfly.openssl_wildfly-openssl-2.2.5.Final.jar").write_bytes(b"jar")
    assert objectstore.cached_package_jars(coords) == ""  # wildfly is transitive: its descriptor is missing
    assert sorted(objectstore.cached_package_jars(coords, ["org.wildfly.openssl:wildfly-openssl"]).split(",")) == \
        sorted(str(tmp_path / "jars" / n) for n in wanted)


def test_the_hadoop_aws_version_is_pysparks_hadoop():
    assert objectstore.spark_packages({}) == f"org.apache.hadoop:hadoop-aws:{objectstore.hadoop_version()}"
    assert objectstore.hadoop_version().count(".") == 2
    assert objectstore.spark_packages({"s3_packages": "g:a:1"}) == "g:a:1"


def _client_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "m"}}, "ListObjectsV2")


def test_client_errors_become_one_line_naming_the_fix():
    s = objectstore.S3Settings.from_environ(ENV)
    uri = "s3a://bkt/lake"
    cases = {
        NoCredentialsError(): "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
        EndpointConnectionError(endpoint_url="http://127.0.0.1:9000"): "check AWS_ENDPOINT_URL",
        _client_error("InvalidAccessKeyId"): "fix AWS_ACCESS_KEY_ID",
        _client_error("SignatureDoesNotMatch"): "AWS_SECRET_ACCESS_KEY is wrong",
        _client_error("ExpiredToken"): "AWS_SESSION_TOKEN",
        _client_error("NoSuchBucket"): "bucket 'bkt' does not exist",
        _client_error("PermanentRedirect"): "set AWS_REGION",
        _client_error("AccessDenied"): "access denied to s3a://bkt/lake",
    }
    for exc, needle in cases.items():
        text = str(objectstore.explain(exc, uri, s))
        assert needle in text and "\n" not in text and "very-secret" not in text, text


def test_half_a_key_pair_is_refused_before_any_request():
    with pytest.raises(objectstore.ObjectStoreError, match="AWS_SECRET_ACCESS_KEY is not set"):
        objectstore.check_access(["s3a://b/x"], {"AWS_ACCESS_KEY_ID": "a"})
    objectstore.check_access(["/local/lake", None], {})  # nothing remote: nothing to check
