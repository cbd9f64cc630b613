"""Set-based writes the ORM makes slow.

``QuerySet.bulk_update`` writes one ``CASE WHEN pk = … THEN …`` per row and
field: for a batch of 100 reports its query compilation alone cost more than
everything else the batch did (pyinstrument, docs/performance.md). Here the
rows go in as one parameter, a JSON array of rows that PostgreSQL takes
apart (``_source``), joined back to the table by primary key: the
statement's text is the same for any number of rows, and Python's work is
one ``json.dumps``. ``Writes`` sends several such writes as one statement.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable, Iterable, Sequence
from functools import cache
from typing import Any

from django.db import DEFAULT_DB_ALIAS, IntegrityError, connection, connections, models, transaction
from django.db.models.base import ModelState
from django.db.models.fields.related import RelatedField
from django.db.models.options import Options
from django.db.models.signals import post_init, pre_init


def _target(field: models.Field) -> models.Field:
    """The field whose values a column holds: a foreign key's target."""
    return field.target_field if isinstance(field, RelatedField) else field


def _concrete(meta: Options, name: str) -> models.Field:
    field = meta.get_field(name)
    if not isinstance(field, models.Field) or not field.concrete:
        raise ValueError(f"{name} is not a concrete field of {meta.label}")
    return field


def column_name(field: models.Field) -> str:
    if field.column is None:  # only fields without a column of their own (not concrete)
        raise ValueError(f"{field} has no column")
    return field.column


def _writable_as_rows(field: models.Field) -> bool:
    target = _target(field)
    # A model's JSON values are prepared as adapters, not text: rows with a
    # JSON field take the ORM's path (``insert_columns`` takes JSON as text).
    return target.get_internal_type() in connection.data_types and target.get_internal_type() != "JSONField"


def match(type_: str, one: bool) -> str:
    """A key condition's right side for a statement written in two forms:
    for one key (``= %s``) and for many (``= ANY(%s)``). Prepared, the
    one-key form gets a generic plan after five runs and is not planned
    again; an array's generic plan looks costlier to PostgreSQL than a
    custom one for its values, so a statement taking an array is planned on
    every call (for a rerun's eight-table read, about 1 ms, most of its
    SQL). ``key_param`` gives the matching parameter."""
    return f"= %s::{type_}" if one else f"= ANY(%s::{type_}[])"


def key_param(keys: Sequence) -> Any:
    """The parameter of ``match``: the key itself when there is one."""
    return keys[0] if len(keys) == 1 else list(keys)


def _type(field: models.Field) -> str:
    """The column's type without its length: varchar takes any length the
    column takes."""
    db_type = _target(field).db_type(connection)
    if db_type is None:
        raise ValueError(f"{field} has no column type")
    return db_type.split("(")[0]


def _source(fields: Sequence[models.Field], one: bool) -> str:
    """The rows to write, as a relation of the fields' columns in order.
    One row is a ``VALUES`` of plain values. Many rows are one JSON array of
    rows, taken apart by PostgreSQL: psycopg dumps a Python list element by
    element in Python (type detection, then a dumper per value), which was a
    tenth of a report batch's Python in cProfile, while ``json.dumps`` runs
    in C. A JSON column's values are nested in that document as they are
    (``e->i``), not encoded on their own first."""
    if one:
        return f"(VALUES ({', '.join(f'%s::{_type(f)}' for f in fields)}))"
    columns = ", ".join(f"(e->{i})" if _is_json(f) else f"(e->>{i})::{_type(f)}" for i, f in enumerate(fields))
    return f"(SELECT {columns} FROM jsonb_array_elements(%s::jsonb) AS e)"


def _values(fields: Sequence[models.Field], arrays: list[list], one: bool) -> list:
    """The parameters of ``_source`` for the columns' values (a JSON
    column's as Python values)."""
    if one:
        return [_json_text(array)[0] if _is_json(f) else array[0] for f, array in zip(fields, arrays, strict=True)]
    return [json.dumps(list(zip(*arrays, strict=True)), default=_json_scalar)]


def _json_scalar(value: object) -> str:
    # What a prepared column value may be besides JSON's own types; a
    # column type's input function reads each back (a time's str() is ISO
    # with a space, which PostgreSQL reads). Called for every such value of
    # a batch: the exact types are looked up first, subclasses checked after.
    if type(value) in _TEXT_TYPES or isinstance(value, _TEXT_TYPES):
        return str(value)
    raise TypeError(f"{type(value).__name__} values can't be written as a column of rows")


_TEXT_TYPES = (uuid.UUID, dt.datetime, dt.date)


def _column(field: models.Field, rows: Sequence[models.Model]) -> list:
    """One column's values, prepared for the database. NULLs skip the
    field's preparation chain (most of a new attempt's times are NULL, and
    preparing them was a tenth of the reconcile pass in pyinstrument)."""
    prep, attname = field.get_db_prep_save, field.attname
    db = connections[DEFAULT_DB_ALIAS]  # the wrapper itself: the proxy looks it up per attribute
    return [None if (value := getattr(row, attname)) is None else prep(value, db) for row in rows]


def _update_rows_sql(rows: Sequence[models.Model], fields: Sequence[str]) -> tuple[str, list] | None:
    """``UPDATE … FROM`` the rows (``_source``) of ``fields`` by primary key, with
    ``{after}`` where a caller may add a condition; ``None`` where the
    columns can't go in as rows (the ORM's ``bulk_update`` does it)."""
    model = type(rows[0])
    one = len(rows) == 1
    built = _update_sql_of(model, tuple(fields), connection.vendor, one)
    if built is None:
        return None
    sql, columns = built
    return sql, _values(columns, [_column(f, rows) for f in columns], one)


@cache
def _update_sql_of(
    model: type[models.Model], fields: tuple[str, ...], vendor: str, one: bool
) -> tuple[str, list[models.Field]] | None:
    meta = model._meta
    concrete = [_concrete(meta, name) for name in fields]
    if vendor != "postgresql" or not all(_writable_as_rows(f) for f in concrete):
        return None
    pk = meta.pk
    quote = connection.ops.quote_name
    columns = [pk, *concrete]
    names = [quote(column_name(f)) for f in columns]
    assignments = ", ".join(f"{name} = v.{name}" for name in names[1:])
    sql = (
        f"UPDATE {quote(meta.db_table)} AS t SET {assignments}"
        f" FROM {_source(columns, one)} AS v({', '.join(names)})"
        f" WHERE t.{names[0]} = v.{names[0]} AND {{after}}"
    )
    return sql, columns


def unique_or_none(queryset: models.QuerySet):
    """The row a filter on a unique key finds, or ``None``. Unlike
    ``first()`` it adds no ``ORDER BY pk``: compiling that ordering against a
    wide ``select_related`` hashes every selected column and cost more than
    running the query (the task lock of a rerun, pyinstrument)."""
    rows = list(queryset.order_by()[:1])
    return rows[0] if rows else None


def insert_columns(model: type[models.Model], columns: dict[str, list], *, ignore_conflicts: bool = False) -> None:
    """Insert rows given as columns, ``{attname: values}`` (ids for foreign
    keys), with one ``INSERT … SELECT`` from the rows (``_source``): for callers
    that have tuples, not model instances, and would only build instances
    to have them taken apart again. Nothing is read back. With
    ``ignore_conflicts`` a row that breaks a unique constraint is skipped."""
    writes = Writes()
    writes.insert_columns(model, columns, ignore_conflicts=ignore_conflicts)
    writes.send()


class Writes:
    """Set-based writes sent as one statement. On PostgreSQL each write is a
    data-modifying CTE of one ``WITH``: one round trip, one parse and plan,
    instead of one per write (a rerun's five writes were half its
    statements). They run in the order added: each write's rows are
    filtered on a count of the previous write's, which PostgreSQL must
    finish first, so a write that frees a unique key (an attempt
    superseded) goes before the one that takes it (its successor). A write
    with no rows is left out. Elsewhere, or where a column can't go in as an
    array, each write runs on its own, in order."""

    def __init__(self) -> None:
        self._parts: list[tuple[str, list] | Callable[[], object]] = []

    def __len__(self) -> int:
        return len(self._parts)

    def insert_rows(self, rows: Sequence[models.Model]) -> None:
        """New rows whose primary keys are already set (UUIDs made in Python):
        what ``bulk_create`` sends, without its per-object preparation
        (pre_save, per-value adaptation in the compiler), which cost the
        reconcile pass more than the INSERT did. Nothing is read back."""
        if not rows:
            return
        model = type(rows[0])
        meta = model._meta
        fields = meta.concrete_fields
        if (
            connection.vendor != "postgresql"
            or getattr(rows[0], meta.pk.attname) is None
            or not all(_writable_as_rows(f) for f in fields)
        ):
            self._parts.append(lambda: model._default_manager.bulk_create(list(rows)))
            return
        one = len(rows) == 1
        self._parts.append(
            (_insert_sql(model, fields, one=one), _values(fields, [_column(f, rows) for f in fields], one))
        )
        for row in rows:
            row._state.adding = False
            row._state.db = connection.alias

    def insert_columns(
        self, model: type[models.Model], columns: dict[str, list], *, ignore_conflicts: bool = False
    ) -> None:
        """Rows given as columns (see ``insert_columns``)."""
        if not columns or not next(iter(columns.values())):
            return
        meta = model._meta
        by_attname = {f.attname: f for f in meta.concrete_fields}
        fields = [by_attname[name] for name in columns]
        if connection.vendor != "postgresql":
            names = list(columns)
            rows = [model(**dict(zip(names, values, strict=True))) for values in zip(*columns.values(), strict=True)]
            self._parts.append(lambda: model._default_manager.bulk_create(rows, ignore_conflicts=ignore_conflicts))
            return
        arrays = list(columns.values())
        one = len(arrays[0]) == 1
        self._parts.append(
            (_insert_sql(model, fields, ignore_conflicts=ignore_conflicts, one=one), _values(fields, arrays, one))
        )

    def update_rows(self, rows: Sequence[models.Model], fields: Sequence[str]) -> None:
        """``fields`` of locked rows, by primary key: what
        ``bulk_update`` writes, without its ``CASE WHEN`` per row and field."""
        if not rows or not fields:
            return
        built = _update_rows_sql(rows, fields)
        if built is None:
            model = type(rows[0])
            self._parts.append(lambda: model._default_manager.bulk_update(list(rows), list(fields)))
        else:
            self._parts.append(built)

    def add(self, sql: str, params: list, *, elsewhere: Callable[[], object]) -> None:
        """A write of the caller's own: ``sql`` is an INSERT or UPDATE for
        PostgreSQL with ``{after}`` where its condition may go (a WHERE
        clause's term) and no RETURNING; ``elsewhere`` does the same on other
        databases."""
        self._parts.append((sql, params) if connection.vendor == "postgresql" else elsewhere)

    def send(self) -> None:
        parts, self._parts = self._parts, []
        if not parts:
            return
        if len(parts) == 1 or not all(isinstance(part, tuple) for part in parts):
            for part in parts:
                if isinstance(part, tuple):
                    with connection.cursor() as cursor:
                        cursor.execute(part[0].replace("{after}", "TRUE"), part[1])
                else:
                    part()
            return
        ctes: list[str] = []
        params: list = []
        for i, part in enumerate(parts):
            assert isinstance(part, tuple)  # checked above
            after = "TRUE" if i == 0 else f"(SELECT count(*) FROM w{i - 1}) >= 0"
            ctes.append(f"w{i} AS ({part[0].replace('{after}', after)} RETURNING 1)")
            params += part[1]
        with connection.cursor() as cursor:
            cursor.execute(f"WITH {', '.join(ctes)} SELECT count(*) FROM w{len(parts) - 1}", params)


def _is_json(field: models.Field) -> bool:
    return field.get_internal_type() == "JSONField"


def _json_text(values: Sequence) -> list:
    """JSON goes in as text: an array of jsonb takes strings, not adapters."""
    return [None if v is None else json.dumps(v) for v in values]


def _insert_sql(
    model: type[models.Model],
    fields: Sequence[models.Field],
    *,
    ignore_conflicts: bool = False,
    returning: Sequence[models.Field] = (),
    one: bool = False,
) -> str:
    """``INSERT … SELECT`` from the rows (``_source``; ``VALUES``
    for ``one`` row), with ``{after}`` where a condition may go (see
    ``Writes``); built once per shape (building it was a tenth of a rerun's
    Python)."""
    return _insert_sql_of(model, tuple(fields), ignore_conflicts, tuple(returning), one)


@cache
def _insert_sql_of(
    model: type[models.Model],
    fields: tuple[models.Field, ...],
    ignore_conflicts: bool,
    returning: tuple[models.Field, ...],
    one: bool,
) -> str:
    quote = connection.ops.quote_name
    return (
        f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(quote(column_name(f)) for f in fields)})"
        f" SELECT * FROM {_source(fields, one)} AS v WHERE {{after}}"
        + (" ON CONFLICT DO NOTHING" if ignore_conflicts else "")
        + (f" RETURNING {', '.join(quote(column_name(f)) for f in returning)}" if returning else "")
    )


def _insert_arrays(
    model: type[models.Model],
    fields: Sequence[models.Field],
    arrays: list[list],
    *,
    ignore_conflicts: bool = False,
    returning: Sequence[models.Field] = (),
) -> list[tuple]:
    """The INSERT above on its own; the ``returning`` columns of the
    inserted rows."""
    one = len(arrays[0]) == 1
    sql = _insert_sql(model, fields, ignore_conflicts=ignore_conflicts, returning=returning, one=one)
    with connection.cursor() as cursor:
        cursor.execute(sql.replace("{after}", "TRUE"), _values(fields, arrays, one))
        return cursor.fetchall() if returning else []


def bulk_insert_new_keys(rows: Sequence[models.Model], key: Sequence[str]) -> bool:
    """Insert rows with database-made primary keys, skipping any whose
    ``key`` (the attnames of a unique constraint) is taken, and set the
    inserted rows' primary keys. Returns whether every row went in. On
    PostgreSQL one ``INSERT … ON CONFLICT DO NOTHING RETURNING``: no
    savepoint, and a transaction that meets a taken key can go on (it waits
    for a concurrent inserter to commit, then skips). Elsewhere a savepoint
    around ``bulk_create``."""
    if not rows:
        return True
    model = type(rows[0])
    meta = model._meta
    if connection.vendor != "postgresql":
        try:
            with transaction.atomic():
                model._default_manager.bulk_create(list(rows))
        except IntegrityError:
            return False
        return True
    fields = [f for f in meta.concrete_fields if f is not meta.pk]
    arrays = [[getattr(r, f.attname) for r in rows] if _is_json(f) else _column(f, rows) for f in fields]
    key_fields = [_concrete(meta, name) for name in key]
    inserted = {
        tuple(values): pk
        for pk, *values in _insert_arrays(
            model, fields, arrays, ignore_conflicts=True, returning=[meta.pk, *key_fields]
        )
    }
    for row in rows:
        pk = inserted.get(tuple(getattr(row, k) for k in key))
        if pk is not None:
            setattr(row, meta.pk.attname, pk)
            row._state.adding = False
            row._state.db = connection.alias
    return len(inserted) == len(rows)


def instance_of[M: models.Model](
    model: type[M], attrs: Iterable[tuple[str, Any]], *, db: str | None, adding: bool = False
) -> M:
    """An instance holding ``attrs`` as they are, with the state ``from_db``
    gives it (or ``adding``): no ``Model.__init__``, no signals. For rows
    read here and for copies of loaded instances."""
    obj = model.__new__(model)
    obj.__dict__.update(attrs)
    state = obj._state = ModelState()
    state.adding, state.db = adding, db
    return obj


class Columns:
    """A model's concrete columns for a SELECT written once, and the
    instances built from them: what the ORM's compiler would select and
    build, without compiling the query on every call (for a rerun's locks
    the compilation cost more Python than the rest of the rerun)."""

    def __init__(self, model: type[models.Model], alias: str) -> None:
        self.model, self.alias = model, alias
        self._fields = list(model._meta.concrete_fields)
        self._attnames = [f.attname for f in self._fields]
        self._pk = self._fields.index(model._meta.pk)

    def __len__(self) -> int:
        return len(self._fields)

    def sql(self, alias: str | None = None) -> str:
        quote = connection.ops.quote_name
        return ", ".join(f"{alias or self.alias}.{quote(column_name(f))}" for f in self._fields)

    def names(self) -> str:
        """The bare column names, e.g. for a CTE's own SELECT."""
        quote = connection.ops.quote_name
        return ", ".join(quote(column_name(f)) for f in self._fields)

    def build(self, values: Sequence) -> models.Model | None:
        """An instance from its columns' values; ``None`` for an outer
        join's missing row (a NULL primary key)."""
        if values[self._pk] is None:
            return None
        db = connections[DEFAULT_DB_ALIAS]  # the wrapper itself: the proxy looks it up per attribute
        converted = list(values)
        for i, convert in self._converters():
            if converted[i] is not None:
                converted[i] = convert(converted[i], None, db)
        model = self.model
        if pre_init.has_listeners(model):
            return model.from_db(db.alias, self._attnames, converted)
        # What from_db gives for a row of every concrete field, without
        # Model.__init__'s walk over the fields' descriptors (a fifth of a
        # locked read's Python): the values, a state that says "from the
        # database", and post_init for whoever listens.
        obj = instance_of(model, zip(self._attnames, converted, strict=True), db=db.alias)
        if post_init.has_listeners(model):
            post_init.send(sender=model, instance=obj)
        return obj

    def _converters(self) -> list[tuple[int, Callable]]:
        # Built on first use: the backend is known by then.
        cached = self.__dict__.get("_converter_list")
        if cached is None:
            cached = [
                (i, convert)
                for i, field in enumerate(self._fields)
                for convert in field.get_db_converters(connection)
                if convert is not None
            ]
            self.__dict__["_converter_list"] = cached
        return cached
