"""Set-based writes the ORM makes slow.

``QuerySet.bulk_update`` writes one ``CASE WHEN pk = … THEN …`` per row and
field: for a batch of 100 reports its query compilation alone cost more than
everything else the batch did (pyinstrument, docs/performance.md). PostgreSQL
can take each column as one array instead, joined back to the rows by
primary key: the statement's size, and Python's work, no longer grow with
rows × fields but with rows + fields.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence

from django.db import IntegrityError, connection, models, transaction
from django.db.models.fields.related import RelatedField
from django.db.models.options import Options


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


def _unnestable(field: models.Field) -> bool:
    target = _target(field)
    # JSON values need an adapter per value and arrays of them don't mix with
    # the casts below; the ORM's own path handles those.
    return target.get_internal_type() in connection.data_types and target.get_internal_type() != "JSONField"


def _array_cast(field: models.Field) -> str:
    """The placeholder of one column's array, cast to the column's type
    without its length: varchar[] takes any length the column takes."""
    db_type = _target(field).db_type(connection)
    if db_type is None:
        raise ValueError(f"{field} has no column type")
    return f"%s::{db_type.split('(')[0]}[]"


def _column(field: models.Field, rows: Sequence[models.Model]) -> list:
    """One column's values, prepared for the database. NULLs skip the
    field's preparation chain (most of a new attempt's times are NULL, and
    preparing them was a tenth of the reconcile pass in pyinstrument)."""
    prep, attname = field.get_db_prep_save, field.attname
    return [None if (value := getattr(row, attname)) is None else prep(value, connection) for row in rows]


def bulk_update_unnest(rows: Sequence[models.Model], fields: Sequence[str]) -> None:
    """Write ``fields`` of every (locked) row in one ``UPDATE``; same effect
    as ``Model.objects.bulk_update(rows, fields)``."""
    if not rows or not fields:
        return
    model = type(rows[0])
    statement = _update_statement(model, tuple(fields), connection.vendor)
    if statement is None:
        model._default_manager.bulk_update(rows, list(fields))
        return
    sql, columns = statement
    with connection.cursor() as cursor:
        cursor.execute(sql, [_column(f, rows) for f in columns])


@functools.lru_cache(maxsize=512)
def _update_statement(
    model: type[models.Model], fields: tuple[str, ...], vendor: str
) -> tuple[str, list[models.Field]] | None:
    """The ``UPDATE … FROM unnest`` of these fields and the columns its
    arrays hold, built once per model and fields (building it, the column
    types above all, cost a single report more than its UPDATE took);
    None where the ORM has to write them."""
    meta = model._meta
    concrete = [_concrete(meta, name) for name in fields]
    if vendor != "postgresql" or not all(_unnestable(f) for f in concrete):
        return None
    pk = meta.pk
    quote = connection.ops.quote_name
    columns = [pk, *concrete]
    casts = [_array_cast(f) for f in columns]
    names = [quote(column_name(f)) for f in columns]
    assignments = ", ".join(f"{name} = v.{name}" for name in names[1:])
    sql = (
        f"UPDATE {quote(meta.db_table)} AS t SET {assignments}"
        f" FROM unnest({', '.join(casts)}) AS v({', '.join(names)})"
        f" WHERE t.{names[0]} = v.{names[0]}"
    )
    return sql, columns


def unique_or_none(queryset: models.QuerySet):
    """The row a filter on a unique key finds, or ``None``. Unlike
    ``first()`` it adds no ``ORDER BY pk``: compiling that ordering against a
    wide ``select_related`` hashes every selected column and cost more than
    running the query (the task lock of a rerun, pyinstrument)."""
    rows = list(queryset.order_by()[:1])
    return rows[0] if rows else None


def bulk_insert_unnest(rows: Sequence[models.Model]) -> None:
    """Insert new rows whose primary keys are already set (UUIDs made in
    Python) with one ``INSERT … SELECT FROM unnest(arrays)``: what
    ``bulk_create`` sends on PostgreSQL, without its per-object preparation
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
        or not all(_unnestable(f) for f in fields)
    ):
        model._default_manager.bulk_create(list(rows))
        return
    _insert_arrays(model, fields, [_column(f, rows) for f in fields])
    for row in rows:
        row._state.adding = False
        row._state.db = connection.alias


def insert_columns(model: type[models.Model], columns: dict[str, list], *, ignore_conflicts: bool = False) -> None:
    """Insert rows given as columns, ``{attname: values}`` (ids for foreign
    keys), with one ``INSERT … SELECT FROM unnest(arrays)``: for callers
    that have tuples, not model instances, and would only build instances
    to have them taken apart again. Nothing is read back. With
    ``ignore_conflicts`` a row that breaks a unique constraint is skipped."""
    if not columns or not next(iter(columns.values())):
        return
    meta = model._meta
    by_attname = {f.attname: f for f in meta.concrete_fields}
    fields = [by_attname[name] for name in columns]
    if connection.vendor != "postgresql":
        names = list(columns)
        rows = [model(**dict(zip(names, values, strict=True))) for values in zip(*columns.values(), strict=True)]
        model._default_manager.bulk_create(rows, ignore_conflicts=ignore_conflicts)
        return
    arrays = [
        _json_text(values) if _is_json(field) else values
        for field, values in zip(fields, columns.values(), strict=True)
    ]
    _insert_arrays(model, fields, arrays, ignore_conflicts=ignore_conflicts)


def _is_json(field: models.Field) -> bool:
    return field.get_internal_type() == "JSONField"


def _json_text(values: Sequence) -> list:
    """JSON goes in as text: an array of jsonb takes strings, not adapters."""
    return [None if v is None else json.dumps(v) for v in values]


def _insert_arrays(
    model: type[models.Model],
    fields: Sequence[models.Field],
    arrays: list[list],
    *,
    ignore_conflicts: bool = False,
    returning: Sequence[models.Field] = (),
) -> list[tuple]:
    """``INSERT … SELECT FROM unnest`` of one prepared array per field;
    the ``returning`` columns of the inserted rows."""
    sql = _insert_statement(model, tuple(fields), ignore_conflicts, tuple(returning))
    with connection.cursor() as cursor:
        cursor.execute(sql, arrays)
        return cursor.fetchall() if returning else []


@functools.lru_cache(maxsize=256)
def _insert_statement(
    model: type[models.Model],
    fields: tuple[models.Field, ...],
    ignore_conflicts: bool,
    returning: tuple[models.Field, ...],
) -> str:
    """Built once per shape, as ``_update_statement``."""
    quote = connection.ops.quote_name
    return (
        f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(quote(column_name(f)) for f in fields)})"
        f" SELECT * FROM unnest({', '.join(_array_cast(f) for f in fields)})"
        + (" ON CONFLICT DO NOTHING" if ignore_conflicts else "")
        + (f" RETURNING {', '.join(quote(column_name(f)) for f in returning)}" if returning else "")
    )


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
    arrays = [_json_text([getattr(r, f.attname) for r in rows]) if _is_json(f) else _column(f, rows) for f in fields]
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


def select_columns(model: type[models.Model], alias: str) -> tuple[str, list[models.Field]]:
    """``alias.col, …`` of every concrete field, for a raw ``SELECT`` whose
    rows ``models_from_rows`` turns back into instances."""
    quote = connection.ops.quote_name
    fields = list(model._meta.concrete_fields)
    return ", ".join(f"{alias}.{quote(column_name(f))}" for f in fields), fields


def models_from_rows(model: type[models.Model], fields: Sequence[models.Field], rows: Sequence[Sequence]) -> list:
    """Instances from raw rows of ``select_columns``: what the ORM builds,
    without compiling the query each time (a lock by key compiled for
    longer than PostgreSQL took to run it). A raw cursor skips the fields'
    converters, so they are applied here (JSON arrives as text)."""
    attnames = [f.attname for f in fields]
    converters = [(i, f.from_db_value) for i, f in enumerate(fields) if hasattr(f, "from_db_value")]
    out = []
    for row in rows:
        values = list(row)
        for i, convert in converters:
            values[i] = convert(values[i], None, connection)
        out.append(model.from_db(connection.alias, attnames, values))
    return out
