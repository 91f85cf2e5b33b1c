"""A compiled reading returns what its queryset returns, run after run, on both stacks."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
from django.db import DatabaseError, connection, transaction
from django.db.models import BooleanField, ExpressionWrapper, F, Model, Q, QuerySet
from django.db.models.fields.json import KT
from django.db.transaction import TransactionManagementError
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from ledger.compiled import ReadingCache, compile_reading, save_fields
from workers.models import Directive

pytestmark = pytest.mark.django_db


def directive(title: str, **fields: object) -> Directive:
    values: dict[str, object] = {"root_node_id": "root", "genome_id": "genome-1", **fields}
    return Directive.objects.create(title=title, **values)


def reading_of_titles() -> object:
    return (
        Directive.objects.filter(genome_id="genome-1")
        .annotate(
            colour=KT("metadata__colour"),
            urgent=ExpressionWrapper(Q(metadata__urgent=True), output_field=BooleanField()),
        )
        .order_by("title")
        .values_list("title", "created_at", "constraints", "completed_at", "colour", "urgent")
    )


def test_a_values_reading_converts_its_columns_as_the_queryset_does() -> None:
    directive("a", metadata={"colour": "red", "urgent": True}, constraints=["x", {"y": 1}])
    directive("b", metadata={}, completed_at=timezone.now() - timedelta(days=1))
    compiled = compile_reading(reading_of_titles())  # type: ignore[arg-type]

    rows = compiled.rows()

    assert rows == list(reading_of_titles())  # type: ignore[call-overload]
    assert rows[0][2] == ["x", {"y": 1}] and rows[0][4] == "red" and rows[0][5] is True
    assert rows[1][1].tzinfo is not None and rows[1][3] < rows[1][1]  # datetimes, aware
    assert rows[1][4] is None and not rows[1][5]  # no such key: NULL, as in the queryset


def test_a_compiled_reading_sees_rows_written_after_it_was_compiled() -> None:
    cache = ReadingCache()
    directive("a")
    assert [row[0] for row in cache.rows(("titles",), reading_of_titles)] == ["a"]  # type: ignore[arg-type]

    directive("b")

    assert [row[0] for row in cache.rows(("titles",), reading_of_titles)] == ["a", "b"]  # type: ignore[arg-type]


def test_it_is_compiled_once_per_key_and_keeps_the_most_recently_used() -> None:
    cache = ReadingCache(size=2)
    builds: list[str] = []

    def build(genome: str) -> Callable[[], QuerySet[Any]]:
        def queryset() -> QuerySet[Any]:
            builds.append(genome)
            return Directive.objects.filter(genome_id=genome).values_list("title")

        return queryset

    directive("a")
    for _ in range(3):
        assert cache.rows(("by genome", "genome-1"), build("genome-1")) == [("a",)]
    assert cache.rows(("by genome", "genome-2"), build("genome-2")) == []
    assert builds == ["genome-1", "genome-2"]  # the key names the value: never a stale reading

    cache.rows(("by genome", "genome-1"), build("genome-1"))  # used again: now the newest
    cache.rows(("by genome", "genome-3"), build("genome-3"))  # the least recently used goes
    cache.rows(("by genome", "genome-1"), build("genome-1"))
    cache.rows(("by genome", "genome-2"), build("genome-2"))
    assert builds == ["genome-1", "genome-2", "genome-3", "genome-2"]


def test_model_instances_and_first_match_the_queryset() -> None:
    cache = ReadingCache()
    older = directive("older", metadata={"n": 1})
    directive("newer", metadata={"n": 2})

    found = cache.instances(("all",), lambda: Directive.objects.filter(root_node_id="root"))
    first = cache.first(("first",), lambda: Directive.objects.filter(root_node_id="root"))
    missing = cache.first(("none",), lambda: Directive.objects.filter(root_node_id="elsewhere"))

    expected = list(Directive.objects.filter(root_node_id="root"))
    assert [(d.pk, d.title, d.metadata, d.created_at) for d in found] == [
        (d.pk, d.title, d.metadata, d.created_at) for d in expected
    ]
    assert first is not None and first.pk == Directive.objects.first().pk  # type: ignore[union-attr]
    assert first.title == "newer"  # the model's own ordering (newest first), as first() orders
    assert missing is None
    assert not found[0]._state.adding and found[0]._state.db == "default"
    found_older = next(d for d in found if d.pk == older.pk)
    found_older.title = "saved"
    found_older.save(update_fields=["title"])  # an instance that saves as a fetched one does
    assert Directive.objects.get(pk=older.pk).title == "saved"


def test_whole_rows_convert_a_returning_statement_as_the_queryset_would() -> None:
    """An UPDATE … RETURNING every column (then one of its own) gives the instance a fetch
    gives: JSON decoded, datetimes aware; the extra column left as the database gave it."""
    stored = directive("claimed", metadata={"n": 1}, constraints=["x"])
    fields = Directive._meta.concrete_fields
    quote = connection.ops.quote_name
    columns = ", ".join(quote(str(field.column)) for field in fields)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {quote(Directive._meta.db_table)} SET title = %s WHERE id = %s "
            f"RETURNING {columns}, 41 + 1",
            ["claimed again", stored.pk],
        )
        fetched = cursor.fetchall()

    reading = ReadingCache().whole_rows(Directive)
    [converted] = reading.converted(fetched)
    [returned] = reading.instances_of([converted])

    expected = Directive.objects.get(pk=stored.pk)
    assert converted[-1] == 42
    assert [getattr(returned, f.attname) for f in fields] == [
        getattr(expected, f.attname) for f in fields
    ]
    assert returned.title == "claimed again" and returned.metadata == {"n": 1}
    assert returned.created_at.tzinfo is not None and not returned._state.adding


def test_a_reading_that_can_match_nothing_runs_no_query() -> None:
    cache = ReadingCache()
    with CaptureQueriesContext(connection) as queries:
        rows = cache.rows(("empty",), lambda: Directive.objects.filter(pk__in=[]).values_list("pk"))
    assert rows == [] and len(queries) == 0


@pytest.mark.django_db(transaction=True)  # so that outside the atomic block is autocommit
def test_a_locking_reading_keeps_its_lock_clause() -> None:
    cache = ReadingCache()
    directive("a")
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        locked = cache.first(
            ("lock",), lambda: Directive.objects.select_for_update().filter(title="a")
        )
    assert locked is not None and locked.title == "a"
    sql = queries.captured_queries[-1]["sql"]
    assert ("FOR UPDATE" in sql) == connection.features.has_select_for_update

    def outside() -> object:
        return cache.first(("lock",), lambda: Directive.objects.none())

    if connection.features.has_select_for_update:  # as Django refuses it, compiled or not
        with pytest.raises(TransactionManagementError, match="outside of a transaction"):
            outside()
    else:
        assert outside() is not None  # SQLite ignores the lock, as Django's queryset does


def test_only_whole_rows_or_values_are_compiled() -> None:
    with pytest.raises(TypeError, match="values_list"):
        compile_reading(Directive.objects.values("title"))
    with pytest.raises(TypeError, match="whole rows"):
        compile_reading(Directive.objects.only("title"))
    with pytest.raises(TypeError, match="whole rows"):
        compile_reading(Directive.objects.select_related("created_by"))


def test_a_slot_takes_a_new_value_each_run_from_one_compilation() -> None:
    cache = ReadingCache()
    builds: list[str] = []

    def by_genome(genome: str) -> QuerySet[Any]:
        builds.append(genome)
        return Directive.objects.filter(genome_id=genome, root_node_id="root").values_list("title")

    directive("a")
    directive("b", genome_id="genome-2")

    assert cache.rows(("by genome",), by_genome, "genome-1") == [("a",)]
    assert cache.rows(("by genome",), by_genome, "genome-2") == [("b",)]
    assert cache.rows(("by genome",), by_genome, "genome-3") == []
    assert len(builds) == 1  # built once, with a stand-in, not with any of the values
    found = cache.first(("lookup",), lambda pk: Directive.objects.filter(pk=pk), "missing")
    assert found is None
    with pytest.raises(TypeError, match="text values"):
        cache.rows(("by genome",), by_genome, 7)  # type: ignore[arg-type]


def test_a_slot_whose_value_is_changed_on_its_way_is_refused() -> None:
    cache = ReadingCache()
    # JSON-encoded on its way (text on SQLite, psycopg's Jsonb on PostgreSQL): refused.
    with pytest.raises(TypeError, match=r"changed|do not reach"):
        cache.rows(
            ("json",), lambda v: Directive.objects.filter(metadata__k=v).values_list("pk"), "x"
        )
    with pytest.raises(TypeError, match="do not reach"):
        cache.rows(("unused",), lambda v: Directive.objects.values_list("pk"), "x")


def test_an_update_with_a_slot_and_an_expression_counts_its_rows() -> None:
    cache = ReadingCache()
    first, second = directive("a", risk="low"), directive("b", risk="low")

    def to_high(pk: str) -> tuple[QuerySet[Directive], dict[str, object]]:
        return Directive.objects.filter(pk=pk, risk="low"), {"risk": "high", "title": F("body")}

    assert cache.update(("to high",), to_high, first.pk) == 1
    assert cache.update(("to high",), to_high, first.pk) == 0  # no longer low: the filter holds
    assert cache.update(("to high",), to_high, "missing") == 0
    assert list(Directive.objects.order_by("risk").values_list("pk", "risk", "title")) == [
        (first.pk, "high", ""),
        (second.pk, "low", "b"),
    ]


def test_save_fields_writes_what_save_would_write() -> None:
    from workers.models import Task

    row = directive("a")
    task = Task.objects.create(
        directive=row, title="t", role="code", packet={"id": "t"}, dependencies=[]
    )
    before = Task.objects.get(pk=task.pk).updated_at
    task.status, task.result, task.result_summary = "completed", {"ok": [1, "ü"]}, "done"

    save_fields(task, "status", "result", "result_summary", "updated_at")

    stored = Task.objects.get(pk=task.pk)
    assert (stored.status, stored.result, stored.result_summary) == (
        "completed",
        {"ok": [1, "ü"]},
        "done",
    )
    assert stored.updated_at > before and stored.updated_at == task.updated_at  # auto_now
    assert stored.title == "t"  # fields not named are left alone
    Task.objects.filter(pk=task.pk).delete()
    with pytest.raises(DatabaseError, match="did not affect any rows"):
        save_fields(task, "status")
    with pytest.raises(ValueError, match="stored"):
        save_fields(Task(title="new"), "status")


SAMPLE_VALUES: tuple[object, ...] = (None, "text", "", 7, 0, True, False, 1.5)


def test_values_written_as_they_are_are_what_django_would_write_for_every_field() -> None:
    """The shortcut in the save preparation (``_kept_types``) against Django's own, on this
    backend, for every concrete field of every installed model and values of every plain
    type: where it keeps a value, Django prepares exactly that value (same type); and it
    keeps some (text, integers or None) on every backend."""
    from django.apps import apps

    from ledger.compiled import _kept_types, _value_for_save

    kept_any: set[type[object]] = set()
    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            kept = _kept_types(field, connection)
            kept_any.update(kept)
            for value in SAMPLE_VALUES:
                if type(value) not in kept:
                    continue
                row = model()
                setattr(row, field.attname, value)
                prepared = field.pre_save(row, True)
                assert prepared is value, (model, field.name, value)
                by_django = field.get_db_prep_save(prepared, connection=connection)
                assert type(by_django) is type(value) and by_django == value, (field, value)
                assert _value_for_save(field, row, add=True, connection=connection) is value
    assert {str, type(None)} <= kept_any


def test_insert_statement_writes_what_djangos_compiler_writes() -> None:
    """Text, integers, None, timestamps, JSON, an enum member, a foreign key: the same
    statement and the same parameters as Django's own INSERT of the same new row."""
    from django.db.models.sql import InsertQuery

    from ledger.compiled import insert_statement
    from workers.models import Task

    parent = directive("parent")
    rows: list[Model] = [
        Directive(title="a", root_node_id="root", genome_id="g", metadata={"k": [1, "ü"]}),
        Directive(title="b", root_node_id="root", genome_id="g", status=Directive.Status.FAILED),
        Task(directive=parent, title="t", role="code", packet={"id": "t"}, dependencies=[]),
    ]
    moment = timezone.now()
    for batch in ([row] for row in rows):  # one row each: PostgreSQL's are UNNESTed
        fields = [f for f in type(batch[0])._meta.concrete_fields if not f.generated]
        query = InsertQuery(type(batch[0]))
        query.insert_values(fields, batch)
        with mock.patch("django.utils.timezone.now", return_value=moment):  # auto_now_add
            sql, params = insert_statement(batch)
            [(django_sql, django_params)] = query.get_compiler(using="default").as_sql()
        assert sql == django_sql
        assert [type(p) for p in params] == [type(p) for p in django_params]
        # psycopg's JSON wrappers do not compare by value: their documents do.
        assert [getattr(p, "obj", p) for p in params] == [
            getattr(p, "obj", p) for p in django_params
        ]
