"""Statements compiled once: a hot path's fixed query, built by Django, then run as its SQL;
and a stored row's update, written as the SQL Django's ``save`` would write.

Building a queryset's SQL costs Django far more than the database takes to run it: the trial
evaluation's reading of a window's new traces (a join, an anti-join, JSON keys) took about
three times as long to build as SQLite took to answer it, after every trace. A reading whose
SQL and parameters depend only on a few values that do not change (a trial's id and fixed
settings) is compiled once for those values and then run as it is: the same SQL and
parameters, and the same conversions of the columns (datetimes, JSON, booleans) Django's own
run applies, so it returns what the queryset would (its ``values_list`` tuples, or its
model instances). A value that changes with every run (a directive's id) is a *slot*: the
queryset is built once with a stand-in for it, and each run puts its value in the stand-in's
place among the parameters. ``update`` compiles a ``QuerySet.update`` the same way.

The values a reading depends on are its key, all of them but its slots: a key that left one
out would run a stale reading. ``ReadingCache`` keeps a bounded number per process (and per
database alias), the least recently used dropped first, so a long-lived worker does not grow
with the trials and nodes it has seen.

``save_fields(row, *names)`` is ``row.save(update_fields=names)`` without the model
machinery around it (the project's models have no save signals or ``save`` overrides on the
hot path): each field's value as ``save`` prepares it (``pre_save``, so ``auto_now`` fields
named get the time; ``get_db_prep_save``), one ``UPDATE`` by primary key whose text is built
once per model and fields. ``insert_statement(rows)`` is the ``INSERT`` Django's compiler
would write for new rows, built the same way (the ledger's held inserts use it).
"""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from django.core.exceptions import EmptyResultSet
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, router, transaction
from django.db.backends.base.operations import BaseDatabaseOperations
from django.db.models import (
    BooleanField,
    CharField,
    DateTimeField,
    Field,
    IntegerField,
    Model,
    QuerySet,
    TextField,
)
from django.db.models.query import ModelIterable, ValuesListIterable
from django.db.models.sql import InsertQuery, UpdateQuery
from django.db.transaction import TransactionManagementError

M = TypeVar("M", bound=Model)


@dataclass(frozen=True)
class CompiledReading:
    """A queryset's SQL, parameters and column conversions. ``sql`` is None when Django
    found the query can match nothing (an empty ``__in``, say). A model queryset's reading
    also names its model and the attributes its columns fill."""

    alias: str
    sql: str | None
    params: tuple[Any, ...]
    converters: tuple[tuple[int, tuple[list[Callable[..., Any]], Any]], ...]
    model: type[Model] | None = None
    attnames: tuple[str, ...] = ()
    # Where each slot's value goes: (position among the parameters, which value).
    slots: tuple[tuple[int, int], ...] = ()
    slot_count: int = 0
    locks: bool = False  # select_for_update: only inside a transaction, as Django insists

    def rows(self, values: tuple[str, ...] = ()) -> list[tuple[Any, ...]]:
        """The rows for the slots' ``values``, converted as the queryset's own iteration
        converts them."""
        if len(values) != self.slot_count or not all(isinstance(v, str) for v in values):
            raise TypeError(f"this reading takes {self.slot_count} text values, got {values!r}")
        if self.sql is None:
            return []
        params = self.params
        if self.slots:
            filled = list(params)
            for position, which in self.slots:
                filled[position] = values[which]
            params = tuple(filled)
        connection = connections[self.alias]
        if self.locks and connection.get_autocommit():
            raise TransactionManagementError(
                "select_for_update cannot be used outside of a transaction."
            )
        with connection.cursor() as cursor:
            cursor.execute(self.sql, params)
            fetched = cursor.fetchall()
        return self.converted(fetched)

    def converted(self, fetched: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
        """Database rows whose first columns are this reading's, converted as ``rows``
        converts them (columns after those are left as they are)."""
        if not self.converters:
            return [tuple(row) for row in fetched]
        connection = connections[self.alias]
        rows = []
        for fetched_row in fetched:
            row = list(fetched_row)
            for position, (functions, expression) in self.converters:
                value = row[position]
                for function in functions:
                    value = function(value, expression, connection)
                row[position] = value
            rows.append(tuple(row))
        return rows

    def instances(self, values: tuple[str, ...] = ()) -> list[Any]:  # of ``model``
        """A model queryset's rows as its model's instances, as the queryset gives them."""
        return self.instances_of(self.rows(values))

    def instances_of(self, rows: Sequence[Sequence[Any]]) -> list[Any]:  # of ``model``
        """Converted rows (``rows``, ``converted``) as the model's instances; columns after
        the model's are left out."""
        if self.model is None:
            raise TypeError("this reading is of columns, not of model instances")
        attnames, width = list(self.attnames), len(self.attnames)
        return [self.model.from_db(self.alias, attnames, row[:width]) for row in rows]


def compile_reading(queryset: QuerySet[Any], slots: tuple[str, ...] = ()) -> CompiledReading:
    """Compile a ``values_list`` queryset (tuples in the order it names its columns), or a
    plain model queryset (every column of its model: no ``select_related``, annotations,
    ``only`` or ``defer``). ``slots``: the stand-ins (``slot_values``) the queryset was built
    with where each run gives a value of its own; each must reach the parameters as it is
    (a text column compared for equality), or this raises TypeError."""
    values = queryset._iterable_class is ValuesListIterable
    if not values and queryset._iterable_class is not ModelIterable:
        raise TypeError("compile_reading takes a values_list() or a plain model queryset")
    if not values and (
        queryset.query.select_related
        or queryset.query.annotations
        or queryset.query.deferred_loading != (frozenset(), True)
    ):
        raise TypeError("compile_reading reads whole rows of one model only")
    alias = queryset.db
    compiler = queryset.query.get_compiler(using=alias)
    try:
        sql, params = compiler.as_sql()
    except EmptyResultSet:
        sql, params = None, ()
    if sql is None:
        model = None if values else queryset.model
        return CompiledReading(
            alias=alias, sql=None, params=(), converters=(), model=model, slot_count=len(slots)
        )
    columns = [selected[0] for selected in compiler.select[: compiler.col_count]]
    if compiler.has_composite_fields(columns):
        raise TypeError("compile_reading does not read composite primary keys")
    converters = tuple(compiler.get_converters(columns).items())
    filled = _slot_positions(tuple(params), slots)
    model, attnames = None, ()
    if not values:
        model, attnames = queryset.model, tuple(column.target.attname for column in columns)
    return CompiledReading(
        alias=alias,
        sql=sql,
        params=tuple(params),
        converters=converters,
        model=model,
        attnames=attnames,
        slots=filled,
        slot_count=len(slots),
        locks=bool(queryset.query.select_for_update)
        and connections[alias].features.has_select_for_update,
    )


@dataclass(frozen=True)
class CompiledUpdate:
    """An ``UPDATE``'s SQL and parameters, with its slots (as ``CompiledReading``'s)."""

    alias: str
    sql: str | None
    params: tuple[Any, ...]
    slots: tuple[tuple[int, int], ...]
    slot_count: int

    def row_count(self, values: tuple[str, ...] = ()) -> int:
        if len(values) != self.slot_count or not all(isinstance(v, str) for v in values):
            raise TypeError(f"this update takes {self.slot_count} text values, got {values!r}")
        if self.sql is None:
            return 0
        params = list(self.params)
        for position, which in self.slots:
            params[position] = values[which]
        with connections[self.alias].cursor() as cursor:
            cursor.execute(self.sql, params)
            return int(cursor.rowcount)


def compile_update(
    queryset: QuerySet[Any], changes: dict[str, Any], slots: tuple[str, ...] = ()
) -> CompiledUpdate:
    """Compile ``queryset.update(**changes)`` as Django's ``update`` builds it."""
    alias = queryset.db
    query = cast(UpdateQuery, queryset.query.chain(UpdateQuery))
    query.add_update_values(changes)
    query.annotations = {}
    if query.get_related_updates() or query.count_active_tables() > 1:
        raise TypeError("compile_update updates the rows of one table, filtered on it alone")
    try:
        sql, params = query.get_compiler(alias).as_sql()
    except EmptyResultSet:
        sql, params = "", ()
    if not sql:
        return CompiledUpdate(alias=alias, sql=None, params=(), slots=(), slot_count=len(slots))
    return CompiledUpdate(
        alias=alias,
        sql=sql,
        params=tuple(params),
        slots=_slot_positions(tuple(params), slots),
        slot_count=len(slots),
    )


def slot_values(count: int) -> tuple[str, ...]:
    """Stand-ins for a reading's per-run values, to build its queryset with."""
    return tuple(f"\x00reading slot {index}\x00" for index in range(count))


def _slot_positions(params: tuple[Any, ...], slots: tuple[str, ...]) -> tuple[tuple[int, int], ...]:
    positions = []
    for position, param in enumerate(params):
        if param in slots:
            positions.append((position, slots.index(param)))
        elif isinstance(param, str) and "reading slot " in param:
            raise TypeError(f"a slot's value reaches the query changed ({param!r}): not a slot")
    missing = set(range(len(slots))) - {which for _, which in positions}
    if missing:
        raise TypeError(f"slots {sorted(missing)} do not reach the query's parameters")
    return tuple(positions)


class ReadingCache:
    """Compiled statements by key (with the database alias), at most ``size`` of them: the
    least recently used is dropped first."""

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        self._lock = threading.Lock()  # a worker's threads share the process's readings
        self._readings: OrderedDict[tuple[str, str, int, Hashable], Any] = OrderedDict()

    def rows(
        self,
        key: Hashable,
        build: Callable[..., QuerySet[Any]],
        *values: str,
        using: str = "default",
    ) -> list[tuple[Any, ...]]:
        """The rows of the ``values_list`` reading ``build`` makes for ``key`` (compiled on
        first use). ``values``: text values the query takes anew each run (ids compared for
        equality); ``build`` is then called with as many stand-ins, and the key need not
        name them."""
        return self._reading(key, build, len(values), using).rows(values)

    def instances(
        self,
        key: Hashable,
        build: Callable[..., QuerySet[M]],
        *values: str,
        using: str = "default",
    ) -> list[M]:
        """The model instances of the reading ``build`` makes for ``key`` (as ``rows``)."""
        return self._reading(key, build, len(values), using).instances(values)

    def first(
        self,
        key: Hashable,
        build: Callable[..., QuerySet[M]],
        *values: str,
        using: str = "default",
    ) -> M | None:
        """The first instance of the reading ``build`` makes for ``key`` (ordered as
        ``QuerySet.first`` orders it: by the primary key unless ordered), or None."""

        def first_only(*slots: str) -> QuerySet[M]:
            queryset = build(*slots)
            if not queryset.ordered:
                queryset = queryset.order_by("pk")
            return queryset[:1]

        found = self._reading(("first", key), first_only, len(values), using).instances(values)
        return found[0] if found else None

    def whole_rows(self, model: type[M], using: str = "default") -> CompiledReading:
        """The reading of every column of ``model`` (in ``concrete_fields`` order): its
        ``converted`` and ``instances_of`` turn rows a statement of one's own returned
        (``UPDATE … RETURNING`` those columns, then any others) into what the model's
        queryset gives."""
        return self._reading(("whole rows", model), lambda: model._default_manager.all(), 0, using)

    def update(
        self,
        key: Hashable,
        build: Callable[..., tuple[QuerySet[Any], dict[str, Any]]],
        *values: str,
        using: str = "default",
    ) -> int:
        """``queryset.update(**changes)`` for the ``(queryset, changes)`` that ``build`` makes
        for ``key``, compiled once (slots as in ``rows``, in the filter or the changes): the
        number of rows it updated. One table only, as an update of one model's own rows."""
        full_key = (using, connections[using].vendor, len(values), ("update", key))
        update = self._used(full_key)
        if update is None:
            slots = slot_values(len(values))
            queryset, changes = build(*slots)
            update = compile_update(queryset.using(using), changes, slots)
            self._keep(full_key, update)
        return update.row_count(values)

    def _used(self, full_key: tuple[str, str, int, Hashable]) -> Any | None:
        compiled = self._readings.get(full_key)
        if compiled is not None:
            # Another thread may have dropped it just now: it is still compiled.
            with contextlib.suppress(KeyError):
                self._readings.move_to_end(full_key)
        return compiled

    def _keep(self, full_key: tuple[str, str, int, Hashable], compiled: Any) -> None:
        with self._lock:
            self._readings[full_key] = compiled
            while len(self._readings) > self.size:
                self._readings.popitem(last=False)

    def _reading(
        self, key: Hashable, build: Callable[..., QuerySet[Any]], slot_count: int, using: str
    ) -> CompiledReading:
        full_key = (using, connections[using].vendor, slot_count, key)
        reading = self._used(full_key)
        if reading is None:
            slots = slot_values(slot_count)
            reading = compile_reading(build(*slots).using(using), slots)
            self._keep(full_key, reading)
        assert isinstance(reading, CompiledReading)
        return reading


# The process's compiled readings: every key starts with a name of its own (the module's
# reading), then every value its query depends on.
READINGS = ReadingCache()


_UPDATES: dict[tuple[str, type[Model], tuple[str, ...]], str] = {}
# A value only Django's own compiler can write: an expression, or a field with a placeholder.
_BY_DJANGO = object()


def _value_for_save(field: Field[Any, Any], row: Model, *, add: bool, connection: Any) -> Any:
    """The field's value as ``save`` prepares it (``pre_save``: defaults, ``auto_now``), or
    ``_BY_DJANGO``."""
    kept = _kept_types(field, connection)
    if kept:
        value = getattr(row, field.attname)
        if type(value) in kept:
            return value
    value = field.pre_save(row, add)
    if hasattr(value, "resolve_expression") or hasattr(field, "get_placeholder"):
        return _BY_DJANGO
    return field.get_db_prep_save(value, connection=connection)


# (the backend's operations, a field) → the value types ``save`` writes as they are (below).
_KEPT: dict[tuple[type[Any], Field[Any, Any]], tuple[type[Any], ...]] = {}


def _kept_types(field: Field[Any, Any], connection: Any) -> tuple[type[Any], ...]:
    """The types of value (exactly these, not subclasses: a ``TextChoices`` member is not
    plain text) whose save preparation for ``field`` is the value itself, decided once per
    backend and field from which of Django's methods the field's class uses: text in a
    text column, an integer in an integer column where the backend passes integers through
    (not psycopg's, which wraps them), a bool in a boolean one, None in any of these or in a
    timestamp column without ``auto_now``. () for every other field: Django prepares its
    values (``_value_for_save``), as it does any value of another type. The hot inserts
    and updates spend most of their preparation on such values (tests/ledger/
    test_compiled.py checks every field of every model against Django's own)."""
    key = (type(connection.ops), field)
    kept = _KEPT.get(key)
    if kept is None:
        kept = _KEPT[key] = _types_kept_as_they_are(field, connection)
    return kept


def _types_kept_as_they_are(field: Field[Any, Any], connection: Any) -> tuple[type[Any], ...]:
    kind = type(field)
    if hasattr(field, "get_placeholder") or kind.get_db_prep_save is not Field.get_db_prep_save:
        return ()
    none = type(None)
    if (
        kind.pre_save is DateTimeField.pre_save
        and kind.get_prep_value is DateTimeField.get_prep_value
        and kind.get_db_prep_value is DateTimeField.get_db_prep_value
    ):
        assert isinstance(field, DateTimeField)
        plain = not field.auto_now and not field.auto_now_add
        passes_none = connection.ops.adapt_datetimefield_value(None) is None
        return (none,) if plain and passes_none else ()
    if kind.pre_save is not Field.pre_save:
        return ()
    for text in (CharField, TextField):
        if (
            kind.get_prep_value is text.get_prep_value
            and kind.to_python is text.to_python
            and kind.get_db_prep_value is Field.get_db_prep_value
        ):
            return (str, none)
    if (
        kind.get_prep_value is BooleanField.get_prep_value
        and kind.to_python is BooleanField.to_python
        and kind.get_db_prep_value is Field.get_db_prep_value
    ):
        return (bool, none)
    if (
        isinstance(field, IntegerField)
        and kind.get_prep_value is IntegerField.get_prep_value
        and kind.get_db_prep_value is IntegerField.get_db_prep_value
        and type(connection.ops).adapt_integerfield_value
        is BaseDatabaseOperations.adapt_integerfield_value
    ):
        return (int, none)
    return ()


def insert_statement(rows: Sequence[Model]) -> tuple[str, tuple[Any, ...]]:
    """The INSERT Django's compiler would write for new ``rows`` of one model (single rows as
    ``VALUES``), built directly: every hop builds a few. A row with a value only Django can
    write goes through Django's compiler."""
    model = type(rows[0])
    numbered = any(row.pk is None for row in rows)
    connection = transaction.get_connection()
    plan = _insert_plan(model, numbered, connection)
    params: list[Any] = []
    for row in rows:
        for field, kept in plan.fields:
            if kept:
                value = getattr(row, field.attname)
                if type(value) in kept:
                    params.append(value)
                    continue
            value = _value_for_save(field, row, add=True, connection=connection)
            if value is _BY_DJANGO:
                query = InsertQuery(model)
                query.insert_values([field for field, _ in plan.fields], list(rows))
                [(sql, django_params)] = query.get_compiler(using=DEFAULT_DB_ALIAS).as_sql()
                return sql, tuple(django_params)
            params.append(value)
    values = ", ".join([plan.row_sql] * len(rows))
    return f"{plan.head} VALUES {values}", tuple(params)


@dataclass(frozen=True)
class _InsertPlan:
    fields: tuple[tuple[Field[Any, Any], tuple[type[Any], ...]], ...]  # with _kept_types
    head: str  # INSERT INTO table (columns)
    row_sql: str  # (%s, …)


_INSERTS: dict[tuple[type[Any], type[Model], bool], _InsertPlan] = {}


def _insert_plan(model: type[Model], numbered: bool, connection: Any) -> _InsertPlan:
    """The columns a new row of ``model`` is written with, and the statement's text, once
    per backend, model and whether the database numbers the rows (a primary key it returns,
    left out when a row has none)."""
    key = (type(connection.ops), model, numbered)
    plan = _INSERTS.get(key)
    if plan is None:
        opts = model._meta
        pk = opts.pk
        assert pk is not None
        fields = [f for f in opts.concrete_fields if not f.generated]
        if pk.db_returning and numbered:
            fields = [f for f in fields if f is not pk]  # the database numbers them
        quote = connection.ops.quote_name
        columns = ", ".join(quote(str(f.column)) for f in fields)
        plan = _InsertPlan(
            fields=tuple((f, _kept_types(f, connection)) for f in fields),
            head=f"INSERT INTO {quote(opts.db_table)} ({columns})",
            row_sql="(" + ", ".join(["%s"] * len(fields)) + ")",
        )
        _INSERTS[key] = plan
    return plan


def save_fields(row: Model, *names: str) -> None:
    """``row.save(update_fields=names)`` for a row read from the database (see the module
    docstring); a value that is an expression, or a field with a placeholder of its own,
    goes through ``save`` itself. Raises DatabaseError, as ``save`` does, if no row was
    updated."""
    model = type(row)
    if row._state.adding or row.pk is None:
        raise ValueError(f"save_fields updates a stored {model.__name__}, not a new one")
    alias = row._state.db or router.db_for_write(model, instance=row)
    connection = connections[alias]
    opts = model._meta
    fields: list[Field[Any, Any]] = []
    for name in names:
        field = opts.get_field(name)
        if not isinstance(field, Field) or not field.concrete or field.primary_key:
            raise ValueError(f"{model.__name__}.{name} is not a column save_fields can update")
        fields.append(field)
    pk = opts.pk
    assert pk is not None
    params: list[Any] = []
    for field in fields:
        value = _value_for_save(field, row, add=False, connection=connection)
        if value is _BY_DJANGO:
            row.save(update_fields=list(names))
            return
        params.append(value)
    params.append(pk.get_db_prep_value(row.pk, connection))
    key = (connection.vendor, model, names)
    sql = _UPDATES.get(key)
    if sql is None:
        quote = connection.ops.quote_name
        assignments = ", ".join(f"{quote(str(field.column))} = %s" for field in fields)
        sql = f"UPDATE {quote(opts.db_table)} SET {assignments} WHERE {quote(str(pk.column))} = %s"
        _UPDATES[key] = sql
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        updated = cursor.rowcount
    if updated == 0:
        raise DatabaseError("Save with update_fields did not affect any rows.")
