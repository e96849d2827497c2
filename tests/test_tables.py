"""Lake.read_pinned: a table version read as Parquet gives exactly what the Delta source gives."""

from chispa import assert_df_equality

from lakehouse.session import tuned
from lakehouse.tables import Lake


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
