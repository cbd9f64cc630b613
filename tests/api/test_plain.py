"""``Plain`` gives what DRF's validation gives, or defers to it: it never
accepts what DRF refuses and never answers something else. No database."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rest_framework import serializers
from rest_framework.exceptions import ValidationError

from missioncontrol.api.fields import StrictCharField
from missioncontrol.api.plain import Plain
from missioncontrol.api.serializers.native_runs import NativeRunReportSerializer, plain_reports, report_data
from retries.models import NativeRun

ATTEMPT = "0b9f2a4e-4c1d-4f5e-9a7b-2d3c4e5f6a7b"
VALID = {
    "executor": "ext",
    "native_task_id": "nt-1",
    "native_run_id": "nr-1",
    "task": "t-1",
    "attempt_id": ATTEMPT,
    "status": "running",
    "created_at": "2026-11-02T09:14:00.1234567+02:00",
    "phase": "execute",
    "message": "ü ✓",
}


def drf(data):
    """DRF's answer: the validated data, or the ValidationError."""
    try:
        return dict(NativeRunReportSerializer().run_validation(data))
    except ValidationError as exc:
        return exc


PLAIN = Plain(NativeRunReportSerializer())


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"attempt_id": None, "created_at": None},
        {"attempt_id": ATTEMPT.upper()},
        {"created_at": "2026-11-02T09:14:00Z"},
        {"phase": "", "message": ""},
        {"phase": "   ", "message": "  padded  "},
        {"executor": "  ext  ", "task": "\tt-1\n"},
        {"executor": "e" * 50, "message": "m" * 10_000},
        {"extra": "ignored", "status": "succeeded"},
    ],
    ids=lambda change: ",".join(change) or "as-is",
)
def test_plainly_valid_reports_get_drfs_data(change):
    data = {**VALID, **change}
    expected = drf(data)
    assert not isinstance(expected, ValidationError), expected
    assert PLAIN(data) == expected
    assert report_data(data) == expected


def test_optional_fields_left_out_get_drfs_defaults():
    data = {k: VALID[k] for k in ("executor", "native_task_id", "native_run_id", "task", "status")}
    assert PLAIN(data) == drf(data) == {**data, "attempt_id": None, "created_at": None, "phase": "", "message": ""}


@pytest.mark.parametrize(
    "change",
    [
        {"executor": None},
        {"executor": ""},
        {"executor": "   "},
        {"executor": "e" * 51},
        {"executor": 5},
        {"task": ["t"]},
        {"native_run_id": "a\x00b"},
        {"message": "x\ud800"},
        {"message": "m" * 10_001},
        {"phase": None},
        {"status": "done"},
        {"status": None},
        {"attempt_id": "not-a-uuid"},
        {"attempt_id": 7},
        {"attempt_id": "{" + ATTEMPT + "}"},
        {"attempt_id": ATTEMPT + "\n"},
        {"created_at": "2026-11-02T09:14:00Z\n"},
        {"created_at": "2026-11-02"},
        {"created_at": "2026-11-02t09:14:00z"},
        {"created_at": "2026-11-02T09:14:00"},
        {"created_at": "9999-12-31T23:59:59-23:59"},
        {"created_at": 1_700_000_000},
    ],
    ids=lambda change: ",".join(f"{k}={str(v)[:12]!r}" for k, v in change.items()),
)
def test_anything_drf_refuses_is_left_to_drf(change):
    data = {**VALID, **change}
    assert isinstance(drf(data), ValidationError)
    assert PLAIN(data) is None
    with pytest.raises(ValidationError):
        report_data(data)


@pytest.mark.parametrize("missing", ["executor", "native_task_id", "native_run_id", "task", "status"])
def test_a_missing_required_field_is_left_to_drf(missing):
    data = {k: v for k, v in VALID.items() if k != missing}
    assert PLAIN(data) is None
    assert isinstance(drf(data), ValidationError)


@pytest.mark.parametrize("body", [None, [], "report", 5, [VALID]])
def test_a_report_that_is_not_an_object_is_left_to_drf(body):
    assert PLAIN(body) is None


def test_a_batch_is_plain_only_when_every_report_is():
    assert plain_reports([VALID, {**VALID, "native_run_id": "nr-2"}]) == [
        drf(VALID),
        drf({**VALID, "native_run_id": "nr-2"}),
    ]
    assert plain_reports([VALID, {**VALID, "status": "done"}]) is None
    assert plain_reports([]) == []


# A serializer Plain does not fully understand gets None for everything, so
# a rule added later cannot be skipped by the plain path.
class _WithValidate(serializers.Serializer):
    name = StrictCharField(max_length=5)

    def validate(self, attrs):
        return attrs


class _WithFieldMethod(serializers.Serializer):
    name = StrictCharField(max_length=5)

    def validate_name(self, value):
        return value


class _WithOtherValidator(serializers.Serializer):
    name = StrictCharField(max_length=5, validators=[lambda v: None])


class _WithInteger(serializers.Serializer):
    count = serializers.IntegerField()


class _WithSource(serializers.Serializer):
    name = StrictCharField(source="label")


class _WithDrfCharField(serializers.Serializer):
    # DRF's own text field checks its length in a validator, which the plain path skips.
    name = serializers.CharField(max_length=5)


class _Understood(serializers.Serializer):
    name = StrictCharField(max_length=5)


@pytest.mark.parametrize(
    "cls", [_WithValidate, _WithFieldMethod, _WithOtherValidator, _WithInteger, _WithSource, _WithDrfCharField]
)
def test_a_serializer_with_rules_plain_does_not_know_is_always_left_to_drf(cls):
    data = {"name": "ok", "count": 1}
    assert not isinstance(cls().run_validation(data), ValidationError)
    assert Plain(cls())(data) is None


def test_a_serializer_plain_knows_is_validated_plainly():
    assert Plain(_Understood())({"name": " ok "}) == {"name": "ok"}


TEXT = st.one_of(
    st.sampled_from(["", " ", "\x00", "a\x00", "\ud800", "é", "x" * 51, "x" * 201, " pad ", "\t", "\u00a0x\u2003"]),
    st.text(max_size=60),
)
VALUE = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), TEXT, st.lists(TEXT, max_size=2))
UUIDS = st.one_of(st.uuids().map(str), st.uuids().map(lambda u: str(u).upper()), st.uuids().map(lambda u: u.hex), VALUE)
STAMPS = st.one_of(
    st.datetimes(min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30), timezones=st.timezones()).map(
        lambda d: d.isoformat()
    ),
    st.datetimes().map(lambda d: d.isoformat()),
    st.sampled_from(["2026-11-02T09:14:00.123456789Z", "2026-02-30T00:00:00Z", "0001-01-01T00:00:00+01:00"]),
    VALUE,
)
MISSING = object()
FIELDS = list(NativeRunReportSerializer().fields)
CLEAN = st.characters(exclude_categories=("Cs",), exclude_characters="\x00")
OFFSETS = st.builds(
    lambda h, m: dt.timezone(dt.timedelta(hours=h, minutes=m if h >= 0 else -m)),
    st.integers(-14, 14),
    st.sampled_from([0, 30, 45]),
)


def _text(limit: int, *, blank: bool) -> st.SearchStrategy[str]:
    text = st.text(CLEAN, max_size=limit)
    return text if blank else text.filter(str.strip)


# A report that is valid, then up to two of its fields replaced by anything
# (or left out): every report is either plainly valid or one or two steps
# from it, where the two validations could part.
VALID_REPORTS = st.fixed_dictionaries(
    {
        "executor": _text(50, blank=False),
        "native_task_id": _text(200, blank=False),
        "native_run_id": _text(200, blank=False),
        "task": _text(200, blank=False),
        "attempt_id": st.one_of(st.none(), st.uuids().map(str), st.uuids().map(lambda u: str(u).upper())),
        "status": st.sampled_from(NativeRun.Status.values),
        "created_at": st.one_of(
            st.none(),
            st.datetimes(min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30), timezones=OFFSETS).map(
                lambda d: d.isoformat()
            ),
        ),
        "phase": _text(100, blank=True),
        "message": _text(300, blank=True),
    }
)
CHANGES = st.dictionaries(st.sampled_from(FIELDS), st.one_of(st.just(MISSING), UUIDS, STAMPS), max_size=2)


@settings(max_examples=500, deadline=None, derandomize=True, database=None)
@given(VALID_REPORTS, CHANGES)
def test_plain_never_disagrees_with_drf(valid, changes):
    data = {k: v for k, v in {**valid, **changes}.items() if v is not MISSING}
    expected, got = drf(data), PLAIN(data)
    if isinstance(expected, ValidationError):
        assert got is None
    elif got is not None:
        assert got == expected
        assert all(type(got[k]) is type(expected[k]) for k in got)
    if not changes:
        # Valid as generated: the plain path must take it, or it saves nothing.
        assert got is not None and got == expected


def test_the_shapes_executors_send_are_plain():
    """The plain path is taken for the reports executors actually send (or
    it would save nothing): every valid report above was plain, and so is a
    report with a timestamp Python formats."""
    data = {**VALID, "created_at": dt.datetime.now(dt.UTC).isoformat(), "attempt_id": str(uuid.uuid4())}
    assert PLAIN(data) is not None
