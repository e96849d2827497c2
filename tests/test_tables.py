"""Lake.read_pinned: a table version read as Parquet gives exactly what the Delta source gives."""

import datetime as dt
import os

import pyspark.sql.functions as F
import pytest

from chispa import assert_df_equality

from lakehouse.session import layer_conf, tuned
from lakehouse.tables import Lake, absolute, to_arrow_together


def test_a_pinned_read_gives_the_delta_sources_rows_at_that_version_including_evolved_columns(spark, tmp_path):
    lake = Lake(str(tmp_path))
    name = "silver.users"
    lake.write(spark.createDataFrame([("u1", 1), ("u2", 2)], "user_id string, n long"), name, mode="overwrite")
    (spark.createDataFrame([("u3", 3, "x")], "user_id string, n long, extra string")
     .write.format("delta").mode("append").option("mergeSchema", "true").save(lake.path(name)))
    delta = spark.read.format("delta")
    for version in (0, 1, None):
        expected = (delta.option("versionAsOf", version) if version is not None else delta).load(lake.path(name))
        got = lake.read_pinned(spark, name, version)
        assert got.schema == expected.schema
        assert_df_equality(got, expected, ignore_row_order=True)


def test_a_pinned_read_of_an_emptied_table_is_empty_with_the_tables_schema(spark, tmp_path):
    lake = Lake(str(tmp_path))
    lake.write(spark.createDataFrame([("u1", 1)], "user_id string, n long"), "silver.users", mode="overwrite")
    lake.write(spark.createDataFrame([], "user_id string, n long"), "silver.users", mode="overwrite")
    got = lake.read_pinned(spark, "silver.users")
    assert got.count() == 0 and got.columns == ["user_id", "n"]


def test_a_pinned_read_lists_the_files_once_so_further_queries_run_no_listing_job(spark, tmp_path):
    lake = Lake(str(tmp_path))
    lake.write(spark.createDataFrame([(str(i), i) for i in range(10)], "user_id string, n long"), "silver.users", mode="overwrite")
    jobs = spark.sparkContext._jsc.sc().dagScheduler()

    def jobs_of_three_counts(df):
        before = jobs.nextJobId()
        assert [df.filter(f"n > {k}").count() for k in range(3)] == [9, 8, 7]
        return jobs.nextJobId() - before

    with tuned(spark, {"spark.sql.adaptive.enabled": False}):  # one job per count (as in gold runs)
        assert jobs_of_three_counts(lake.read_pinned(spark, "silver.users")) == 3
        assert jobs_of_three_counts(lake.read(spark, "silver.users")) == 6  # the Delta source lists the files per query


def test_a_small_table_written_by_delta_rs_reads_back_in_spark_in_one_job_and_a_retry_writes_nothing(spark, tmp_path):
    lake = Lake(str(tmp_path))
    df = spark.createDataFrame([(dt.date(2026, 1, d), d * 10, d / 4) for d in range(1, 4)],
                               "activity_date date, dau long, stickiness double").coalesce(1).cache()
    df.count()  # cached and in one partition, as gold's checked tables are
    jobs = spark.sparkContext._jsc.sc().dagScheduler()
    before = jobs.nextJobId()
    assert lake.write_small(df, "gold.engagement_daily", txn=("gold.engagement_daily", 7)) is True
    assert jobs.nextJobId() - before == 1  # the Arrow fetch; the commit is delta-rs's (a Spark Delta write: several)
    assert_df_equality(lake.read(spark, "gold.engagement_daily"), df, ignore_nullable=True, ignore_row_order=True)
    # A retried run (same txn version) writes nothing; a later run overwrites.
    assert lake.write_small(df.limit(1), "gold.engagement_daily", txn=("gold.engagement_daily", 7)) is False
    assert lake.read(spark, "gold.engagement_daily").count() == 3
    assert lake.write_small(df.limit(1), "gold.engagement_daily", txn=("gold.engagement_daily", 8)) is True
    assert lake.read(spark, "gold.engagement_daily").count() == 1
    from deltalake import DeltaTable

    t = DeltaTable(lake.rs_uri("gold.engagement_daily"))
    assert (t.version(), t.transaction_version("gold.engagement_daily")) == (1, 8)
    assert t.metadata().configuration["delta.enableDeletionVectors"] == "false"  # gold stays readable by delta-rs


def test_a_pinned_read_holding_a_batch_reads_only_the_files_whose_statistics_admit_it(spark, tmp_path):
    import pyspark.sql.functions as F

    lake = Lake(str(tmp_path))
    for batch in (1, 2, 3):
        lake.write(spark.createDataFrame([(f"line {batch}.{i}", batch) for i in range(3)], "value string, batch_id long")
                   .coalesce(1), "bronze.events", mode="append")
    got = lake.read_pinned(spark, "bronze.events", holding=("batch_id", 2))
    assert got.select(F.input_file_name()).distinct().count() == 1  # one of the three files
    assert sorted(r["value"] for r in got.filter(F.col("batch_id") == 2).collect()) == ["line 2.0", "line 2.1", "line 2.2"]
    assert lake.read_pinned(spark, "bronze.events", holding=("batch_id", 9)).count() == 0
    assert lake.read_pinned(spark, "bronze.events").count() == 9
    # Timestamp statistics keep milliseconds: a timestamp never skips a file.
    for ms in (1, 2):
        lake.write(spark.createDataFrame([(dt.datetime(2026, 1, 1, 0, 0, 0, ms * 1000 + 1),)], "at timestamp"),
                   "bronze.users", mode="append")
    assert lake.read_pinned(spark, "bronze.users", holding=("at", dt.datetime(2026, 1, 1, 0, 0, 0, 2001))).count() == 2


def test_a_small_append_is_committed_by_delta_rs_idempotently_all_nullable_and_evolving_like_sparks(spark, tmp_path):
    lake = Lake(str(tmp_path))
    jobs = spark.sparkContext._jsc.sc().dagScheduler()
    first = spark.createDataFrame([("a", 1)], "value string, batch_id long")
    first = first.select(F.col("value"), F.col("batch_id"), F.current_timestamp().alias("seen_at")).coalesce(1)
    assert dict((f.name, f.nullable) for f in first.schema)["seen_at"] is False  # Spark's frame says NOT NULL
    before = jobs.nextJobId()
    lake.write(first, "bronze.events", mode="append", txn=("bronze.events", 1), merge_schema=True, small=True)
    assert jobs.nextJobId() - before == 1  # the Arrow fetch; the commit is delta-rs's
    # Every column stays nullable, as Spark's writer makes them: a later batch with nulls appends.
    nulls = spark.createDataFrame([("b", 2, None)], "value string, batch_id long, seen_at timestamp")
    lake.write(nulls, "bronze.events", mode="append", txn=("bronze.events", 2), merge_schema=True, small=True)
    # A retried batch writes nothing; a new column is added (older rows: null); a missing one is null.
    lake.write(nulls, "bronze.events", mode="append", txn=("bronze.events", 2), merge_schema=True, small=True)
    lake.write(spark.createDataFrame([("c", 3, "x")], "value string, batch_id long, source string"), "bronze.events",
               mode="append", txn=("bronze.events", 3), merge_schema=True, small=True)
    got = lake.read(spark, "bronze.events").select("value", "batch_id", F.col("seen_at").isNotNull().alias("seen"), "source")
    expected = spark.createDataFrame([("a", 1, True, None), ("b", 2, False, None), ("c", 3, False, "x")],
                                     "value string, batch_id long, seen boolean, source string")
    assert_df_equality(got, expected, ignore_nullable=True, ignore_row_order=True)
    assert all(f.nullable for f in lake.read(spark, "bronze.events").schema)
    # Spark's writer appends to the table delta-rs made, under the same transaction bookkeeping.
    lake.write(nulls, "bronze.events", mode="append", txn=("bronze.events", 3), merge_schema=True)
    assert lake.read(spark, "bronze.events").count() == 3
    # Without merge_schema a column the table lacks is refused, and nothing is written.
    lake.write(spark.createDataFrame([("d", 4)], "value string, batch_id long"), "silver.events", mode="append", small=True)
    with pytest.raises(Exception, match="(?i)schema"):
        lake.write(spark.createDataFrame([("e", 5, 1)], "value string, batch_id long, extra int"), "silver.events",
                   mode="append", small=True)
    assert lake.read(spark, "silver.events").columns == ["value", "batch_id"]
    assert lake.read(spark, "silver.events").count() == 1


def test_bronzes_idempotent_append_checks_its_transaction_in_one_job_under_its_layer_settings(spark, cfg, tmp_path):
    lake = Lake(str(tmp_path))
    jobs = spark.sparkContext._jsc.sc().dagScheduler()
    rows = spark.createDataFrame([("line", 1)], "value string, batch_id long").coalesce(1)
    lake.write(rows, "bronze.events", mode="append", txn=("bronze.events", 1))

    def jobs_of_append(batch: int) -> int:
        before = jobs.nextJobId()
        lake.write(rows, "bronze.events", mode="append", txn=("bronze.events", batch), merge_schema=True)
        return jobs.nextJobId() - before

    with tuned(spark, {"spark.sql.adaptive.enabled": True}):
        adaptive = jobs_of_append(2)
    with tuned(spark, layer_conf(cfg, "bronze", None)):
        assert jobs_of_append(3) == 2  # the state reconstruction for the txnAppId check, then the write
    assert adaptive > 2  # adaptive execution splits that reconstruction into several jobs (three in Delta 4.4)
    assert lake.read(spark, "bronze.events").count() == 3


def test_a_pinned_read_is_planned_without_a_spark_job(spark, tmp_path):
    lake = Lake(str(tmp_path))
    lake.write(spark.createDataFrame([("a", 1)], "user_id string, n long"), "silver.users", mode="overwrite")
    jobs = spark.sparkContext._jsc.sc().dagScheduler()
    before = jobs.nextJobId()
    df = lake.read_pinned(spark, "silver.users", 0)  # log and schema from delta-rs (the Delta source: a log-replay job)
    assert df.columns == ["user_id", "n"] and jobs.nextJobId() == before


def test_registering_only_missing_tables_leaves_registered_ones_alone(spark, tmp_path):
    lake = Lake(str(tmp_path))
    lake.write(spark.createDataFrame([("a", 1)], "user_id string, n long"), "silver.users", mode="overwrite")
    spark.sql("DROP TABLE IF EXISTS silver.users")
    assert lake.register(spark, ["silver.users"], only_missing=True) == ["silver.users"]
    # A new version written outside Spark (delta-rs, as gold's small tables are): Spark's copy of the log is stale.
    lake.write_small(spark.createDataFrame([("a", 2)], "user_id string, n long"), "silver.users")
    jobs = spark.sparkContext._jsc.sc().dagScheduler()
    before = jobs.nextJobId()
    assert lake.register(spark, ["silver.users"], only_missing=True) == []  # already there: no log read, no job
    assert jobs.nextJobId() == before  # (spark.catalog.tableExists reads a table's new Delta versions in a job)
    assert spark.sql("SELECT n FROM silver.users").collect()[0]["n"] == 2  # the latest version


def test_small_tables_fetched_together_equal_each_frames_own_arrow_in_one_spark_job(spark):
    a = spark.createDataFrame([(dt.date(2026, 1, d), d * 10, d / 4) for d in range(1, 4)],
                              "activity_date date, dau long, stickiness double").coalesce(1).cache()
    b = spark.createDataFrame([("u1", None, [1, 2], dt.datetime(2026, 1, 1, 12)), ("u0", "x", [], None)],
                              "user_id string, segment string, picks array<int>, seen_at timestamp").coalesce(1).cache()
    empty = spark.createDataFrame([], "name string").coalesce(1).cache()
    frames = {"a": a, "b": b, "empty": empty}
    for df in frames.values():
        df.count()
    expected = {n: df.toArrow() for n, df in frames.items()}
    jobs = spark.sparkContext._jsc.sc().dagScheduler()
    before = jobs.nextJobId()
    got = to_arrow_together(frames, {"a": 3, "b": 2, "empty": 0})
    assert jobs.nextJobId() - before == 1
    for name, table in expected.items():
        assert got[name].equals(table), name  # rows, order and Arrow schema (nullability included)
        assert got[name].schema == table.schema
    # Over `max_cells` the frames are fetched in groups, with the same results.
    before = jobs.nextJobId()
    apart = to_arrow_together(frames, {"a": 3, "b": 2, "empty": 0}, max_cells=1)
    assert jobs.nextJobId() - before == 3
    assert all(apart[n].equals(expected[n]) for n in frames)


def test_a_table_path_that_is_a_file_or_holds_an_empty_log_is_not_a_table(spark, tmp_path):
    """Lake.exists (delta-rs for a local lake) answers as Spark's isDeltaTable: a Delta table needs
    a committed version; a plain file, an empty `_delta_log` or no folder at all is no table."""
    lake = Lake(str(tmp_path))
    (tmp_path / "silver").mkdir()
    (tmp_path / "silver" / "events").write_text("not a table")
    (tmp_path / "silver" / "users" / "_delta_log").mkdir(parents=True)
    assert not lake.exists(spark, "silver.events")
    assert not lake.exists(spark, "silver.users")
    assert not lake.exists(spark, "silver.sessions")
    lake.write(spark.createDataFrame([(1,)], "x int"), "silver.sessions")
    assert lake.exists(spark, "silver.sessions")


def test_kept_rows_are_held_after_the_first_action_and_release_rows_frees_them_and_leaves_other_frames_alone(spark):
    from lakehouse.tables import kept_rows, release_rows

    kept = kept_rows(spark.range(5000).select("id", (F.col("id") % 7).alias("k")))
    sc = spark.sparkContext._jsc.sc()
    before = {s.id() for s in sc.getRDDStorageInfo()}
    assert kept.groupBy("k").count().count() == 7  # the first action computes and keeps the rows
    held = [s for s in sc.getRDDStorageInfo() if s.id() not in before]
    assert len(held) == 1 and held[0].memSize() + held[0].diskSize() > 0
    assert kept.filter(F.col("k") == 0).count() == 715  # read back from the kept rows
    release_rows(kept)
    assert {s.id() for s in sc.getRDDStorageInfo()} == before
    with pytest.raises(Exception, match="CHECKPOINT_RDD_BLOCK_ID_NOT_FOUND"):
        kept.count()  # released rows cannot be read again
    cached = spark.range(3).cache()
    cached.count()
    release_rows(cached)  # not kept_rows' frame: left as it is
    assert cached.is_cached and cached.count() == 3
    cached.unpersist()


def test_releasing_since_a_mark_drops_the_checkpoints_and_caches_made_after_it_and_keeps_older_ones(spark):
    from lakehouse.tables import rdd_mark, release_since

    older = spark.range(4).cache()
    older.count()
    mark = rdd_mark(spark)
    kept = spark.range(50).localCheckpoint(eager=True)
    cached = spark.range(9).cache()
    cached.count()
    lazy = spark.range(6).localCheckpoint(eager=False)  # never computed: nothing to drop, no error
    assert release_since(spark, mark) == 3
    with pytest.raises(Exception, match="CHECKPOINT_RDD_BLOCK_ID_NOT_FOUND"):
        kept.count()  # a dropped local checkpoint cannot be read again
    assert cached.count() == 9 and lazy is not None  # a dropped cache is recomputed from its plan
    assert older.is_cached and older.count() == 4
    assert release_since(spark, mark) == 0
    older.unpersist()


def test_a_pinned_read_reaching_an_instant_skips_the_files_that_end_before_it_to_the_millisecond(spark, tmp_path):
    lake = Lake(str(tmp_path))
    at = lambda day, us=0: dt.datetime(2026, 1, day, 12, 0, 0, us)  # noqa: E731
    for day in (1, 2, 3):  # one file a day, the last event of day 2 at 12:00:00.002002
        lake.write(spark.createDataFrame([(f"e{day}.{i}", at(day, i * 1001)) for i in range(3)], "event_id string, ts timestamp")
                   .coalesce(1), "bronze.users", mode="append")

    def files(instant):
        return lake.read_pinned(spark, "bronze.users", reaching=("ts", instant)).select(F.input_file_name()).distinct().count()

    assert files(at(2, 2002)) == 2  # day 2's file ends exactly there: kept
    assert files(at(2, 3000)) == 2  # its statistics keep milliseconds (12:00:00.002): within one, kept
    assert files(at(2, 3001)) == 1  # more than a millisecond after: only day 3
    assert files(dt.datetime(2026, 1, 3, 10, tzinfo=dt.timezone(dt.timedelta(hours=-2)))) == 1  # 12:00 UTC
    assert files(at(4)) == 0 and files(at(1)) == 3


def test_an_ordered_tables_properties_make_spark_write_small_row_groups_with_timestamp_statistics(spark, tmp_path):
    import pyarrow.parquet as pq
    from deltalake import DeltaTable

    from lakehouse.tables import ORDERED_PROPERTIES

    lake = Lake(str(tmp_path))
    lake.keep_order("silver.events")  # no table yet: nothing to do
    assert not os.path.exists(lake.path("silver.events"))
    # 80,000 events a minute apart, each with 192 bytes of text that does not compress.
    events = spark.range(80000).select(
        F.concat(F.lit("e"), F.col("id").cast("string")).alias("event_id"),
        F.timestamp_seconds(F.lit(1767225600) + F.col("id") * 60).alias("ts"),
        F.concat(F.sha2(F.col("id").cast("string"), 512), F.sha2(F.col("id").cast("string"), 256)).alias("pad")).coalesce(1)

    def layouts():  # (row groups, physical type of ts, whether its statistics hold a minimum) per file
        out = []
        for uri in DeltaTable(lake.path("silver.events")).file_uris():
            meta = pq.ParquetFile(uri).metadata
            ts = meta.schema.names.index("ts")
            column = meta.row_group(0).column(ts)
            out.append((meta.num_row_groups, column.physical_type, column.statistics.has_min_max))
        return out

    lake.write(events, "silver.events")  # a table from before the layout: Spark's defaults
    assert layouts() == [(1, "INT96", False)]
    lake.keep_order("silver.events")
    table = DeltaTable(lake.path("silver.events"))
    assert {k: table.metadata().configuration.get(k) for k in ORDERED_PROPERTIES} == ORDERED_PROPERTIES
    lake.keep_order("silver.events")
    assert DeltaTable(lake.path("silver.events")).version() == table.version()  # once only
    lake.write(events.withColumn("event_id", F.concat("event_id", F.lit("b"))), "silver.events")
    before, after = sorted(layouts(), key=lambda f: f[1], reverse=True)
    assert before == (1, "INT96", False) and after[0] > 1 and after[1:] == ("INT64", True)  # about 16 MB: row groups of 4 MB
    assert lake.read(spark, "silver.events").count() == 160000


def test_absolute_makes_local_paths_and_file_uris_absolute_and_leaves_other_uris_alone(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert absolute("demo/lake") == str(tmp_path / "demo" / "lake")
    assert absolute("file:///data/lake/silver/events") == "/data/lake/silver/events"
    assert absolute("file:/data/lake") == "/data/lake"
    assert absolute("/data/../data/lake") == "/data/lake"
    assert absolute("s3a://bucket/lake/gold/users") == "s3a://bucket/lake/gold/users"
