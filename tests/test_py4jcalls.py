"""lakehouse.py4jcalls: PySpark's calls into the JVM take fewer py4j round trips and give the same values."""

from __future__ import annotations

import contextlib

import pyspark.sql.functions as F
import pytest

from lakehouse.py4jcalls import SEPARATOR


@contextlib.contextmanager
def counted(spark):
    """The py4j commands sent while the block runs (their first line: c = call, r = reflection, i = new...)."""
    client = spark.sparkContext._gateway._gateway_client
    sent: list[str] = []
    real = client.send_command

    def send(command, *args, **kwargs):
        if not command.startswith("m\n"):  # garbage collection of proxies happens whenever Python collects them
            sent.append(command.split("\n", 1)[0])
        return real(command, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(client, "send_command", send)
        yield sent


def test_a_pyspark_function_called_again_is_one_round_trip_not_three(spark):
    F.col("warm_up")  # the first call looks up the class and the method
    with counted(spark) as sent:
        column = F.col("a")
    assert sent == ["c"]  # the call itself: no class or member lookup
    assert spark.createDataFrame([(1,)], "a int").select(column.alias("b")).first()["b"] == 1


def test_packages_and_static_field_values_are_asked_every_time(spark):
    jvm = spark.sparkContext._jvm
    assert jvm.java.lang.Integer.MAX_VALUE == 2**31 - 1
    assert "java" not in vars(jvm)  # a package: not kept
    assert "MAX_VALUE" not in vars(jvm.java.lang.Integer)  # a field value: not kept
    with counted(spark) as sent:
        assert jvm.java.lang.Integer.MAX_VALUE == 2**31 - 1
    assert "r" in sent


@pytest.mark.parametrize("values", [
    [f"col_{i} AS c{i}" for i in range(25)],
    ["ü", "x\ny", "a b", "'quoted'", "back\\slash"],
    ["only", "strings", "here"],
])
def test_a_list_of_strings_crosses_as_one_array_list_in_two_round_trips(spark, values):
    array_list = spark.sparkContext._jvm.java.util.ArrayList  # a package path is looked up each time
    array_list(["the", "first", "conversion"])  # finds the JVM's methods once per gateway
    with counted(spark) as sent:
        got = array_list(values)
    assert sent == ["i", "c", "i"]  # one string split in the JVM (2), then the constructor called with it
    assert got.getClass().getName() == "java.util.ArrayList"
    assert list(got) == values


def test_a_list_of_java_columns_and_numbers_crosses_ten_at_a_time_with_the_same_elements(spark):
    array_list = spark.sparkContext._jvm.java.util.ArrayList
    array_list([1, 2, 3])
    columns = [F.col(f"c{i}")._jc for i in range(23)]
    mixed = columns + [1, 2.5, "s", [3, 4, 5]]
    with counted(spark) as sent:
        got = array_list(mixed)
    # new ArrayList(List.of(10 elements)), addAll(List.of(10)), addAll(List.of(7)) with the nested
    # list's own two, then the constructor called with the result: 9 round trips, not 1 + 27.
    assert len(sent) == 9
    assert got.getClass().getName() == "java.util.ArrayList"
    assert [str(c.toString()) for c in list(got)[:23]] == [f"c{i}" for i in range(23)]
    assert list(got)[23:26] == [1, 2.5, "s"] and list(list(got)[26]) == [3, 4, 5]


@pytest.mark.parametrize("values", [
    ["a", None, "b", "c"],           # List.of refuses nulls: py4j's own converter
    ["a", "", "b", ""],              # a tokenizer drops empty strings: List.of
    ["a", f"x{SEPARATOR}y", "b"],    # the separator itself: List.of
])
def test_a_list_holding_none_an_empty_string_or_the_separator_keeps_every_element(spark, values):
    got = spark.sparkContext._jvm.java.util.ArrayList(values)
    assert list(got) == values


def test_a_select_of_many_expressions_gives_every_column(spark):
    df = spark.range(3).selectExpr("id", *[f"id * {i} AS x{i}" for i in range(1, 30)])
    assert df.columns == ["id"] + [f"x{i}" for i in range(1, 30)]
    assert df.orderBy("id").collect()[2]["x29"] == 58
