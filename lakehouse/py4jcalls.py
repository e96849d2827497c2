"""Fewer py4j round trips for PySpark's calls into the JVM (installed by `session.build_spark`).

Every PySpark function is a py4j call, and py4j resolves its target again on every call: `F.col("x")`
asks the JVM what `org.apache.spark.sql.functions` is, then what its member `col` is, then calls it:
three round trips for one column. PySpark's own helpers use short names (`functions`,
`PythonUtils`) that the JVM first looks for as a class of the default package, scanning every jar
on the classpath and failing, before it finds them among PySpark's imports. A list of strings
or of Java columns (`df.selectExpr(*exprs)`, `df.select(*cols)`) crosses as an empty `ArrayList`
plus one `add` round trip per element.

Counted over a warm pipeline run of 30 users x 10 days (docs/performance.md "Classes, methods
and lists without a round trip each"): 19,773 round trips, of which 2,758 class lookups, 2,778
member lookups and 2,698 additions to a list (1,515 of them strings). Here:

- a class found through the gateway's JVM view, and a method or nested class found on a class,
  is kept on the Python object that found it, so the next lookup asks nothing (answers that are
  not classes or methods, such as packages or static field values, are asked every time, as
  before);
- a list of `LIST_MIN` or more elements crosses in a few round trips (`ListConverter`): strings
  as one string split in the JVM, other elements ten at a time.

Both are transparent to callers: the same Java classes, members and `java.util.ArrayList` values
result. A class name is resolved once per gateway, so a `java_import` made later that gives a
short name already looked up a different meaning does not apply to that name.
"""

from __future__ import annotations

from py4j import java_gateway
from py4j.java_gateway import JavaClass, JavaMember, JVMView
from py4j.protocol import register_input_converter

LIST_MIN = 3  # shorter lists: an `add` per element costs no more than the two calls of a conversion
LIST_OF_MAX = 10  # java.util.List.of has fixed-arity overloads up to ten elements (py4j cannot call varargs)
SEPARATOR = "\x1f"  # ASCII unit separator; a list holding it anywhere crosses element by element

_view_lookup = JVMView.__getattr__
_class_lookup = JavaClass.__getattr__


def _view_getattr(self: JVMView, name: str):
    """JVMView lookup that keeps a class it finds (packages and errors are not kept)."""
    found = _view_lookup(self, name)
    if isinstance(found, JavaClass):
        self.__dict__[name] = found
    return found


def _class_getattr(self: JavaClass, name: str):
    """JavaClass lookup that keeps a static method or nested class it finds (field values are not kept)."""
    found = _class_lookup(self, name)
    if isinstance(found, (JavaMember, JavaClass)):
        self.__dict__[name] = found
    return found


class ListConverter:
    """py4j input converter for a list or tuple of at least `LIST_MIN` elements, none of them None:
    the same `java.util.ArrayList` py4j's own converter builds with one `add` per element, in
    fewer round trips. Non-empty strings cross as one string joined with `SEPARATOR` and split in
    the JVM (`Collections.list(new StringTokenizer(...))`: two round trips whatever the length);
    other elements (PySpark's Java columns, numbers, nested lists) as `List.of` calls of up to
    `LIST_OF_MAX` elements each (two round trips per ten), and so do strings that a tokenizer
    would lose (empty ones, or ones holding `SEPARATOR`). A list holding None is left to py4j's
    converter (`List.of` refuses nulls)."""

    def can_convert(self, obj) -> bool:
        return type(obj) in (list, tuple) and len(obj) >= LIST_MIN and all(e is not None for e in obj)

    def convert(self, obj, gateway_client):
        tools = getattr(gateway_client, "_lakehouse_lists", None)
        if tools is None:
            tools = (JavaClass("java.util.StringTokenizer", gateway_client),
                     JavaClass("java.util.Collections", gateway_client).list,
                     JavaClass("java.util.ArrayList", gateway_client),
                     JavaClass("java.util.List", gateway_client).of)
            gateway_client._lakehouse_lists = tools
        tokenizer, to_list, array_list, list_of = tools
        if all(type(e) is str and e and SEPARATOR not in e for e in obj):
            return to_list(tokenizer(SEPARATOR.join(obj), SEPARATOR))
        out = array_list(list_of(*obj[:LIST_OF_MAX]))
        for start in range(LIST_OF_MAX, len(obj), LIST_OF_MAX):
            out.addAll(list_of(*obj[start:start + LIST_OF_MAX]))
        return out


_INSTALLED: list[bool] = []


def install() -> None:
    """Install both (idempotent; process-wide, for every py4j gateway of this interpreter)."""
    if _INSTALLED:
        return
    java_gateway.JVMView.__getattr__ = _view_getattr
    java_gateway.JavaClass.__getattr__ = _class_getattr
    register_input_converter(ListConverter(), prepend=True)
    _INSTALLED.append(True)
