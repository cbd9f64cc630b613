"""Property-based fuzz of the API's write endpoints (Hypothesis): whatever
JSON-ish body, header or mix of valid and hostile values arrives, the
answer is never a 5xx, every 4xx is the JSON error shape, and a 4xx wrote
no task, attempt, native run or ledger event.

Bounded for CI: 60 examples per endpoint, derandomized (the same examples
every run), no deadline; ``HYPOTHESIS_EXAMPLES=N`` runs more."""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.hostile.conftest import assert_api_error, row_counts

pytestmark = pytest.mark.django_db

EXAMPLES = int(os.environ.get("HYPOTHESIS_EXAMPLES", "60"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)

HOSTILE_TEXT = st.sampled_from(
    [
        "",
        " ",
        "\x00",
        "a\x00b",
        "\ud800",
        "x\udfff",
        "\U0001f600",
        "é" * 3,
        "x" * 10_001,
        "<script>",
        "' OR 1=1 --",
        "%00",
        "../../etc/passwd",
        "\u202e",
        "null",
        "0",
        "-1",
        "9" * 400,
        "2099-01-01T00:00:00Z",
        "not-a-date",
    ]
)
TEXT = st.one_of(HOSTILE_TEXT, st.text(max_size=40))
SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    TEXT,
)
ANYTHING = st.recursive(
    SCALAR,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(TEXT, inner, max_size=4)),
    max_leaves=12,
)


def field(valid: st.SearchStrategy) -> st.SearchStrategy:
    """Mostly a plausible value, sometimes anything at all."""
    return st.one_of(valid, valid, ANYTHING)


def body(required: dict[str, st.SearchStrategy], optional: dict[str, st.SearchStrategy]) -> st.SearchStrategy:
    return st.fixed_dictionaries(
        {k: field(v) for k, v in required.items()},
        optional={**{k: field(v) for k, v in optional.items()}, "unexpected": ANYTHING},
    )


SLUG = st.from_regex(r"\A[a-z0-9][a-z0-9._-]{0,20}\Z")
STATUS = st.sampled_from(["queued", "running", "succeeded", "failed", "cancelled"])
DATETIME = st.sampled_from(["2026-11-02T09:14:00Z", "2020-01-01T00:00:00+00:00", "2099-12-31T23:59:59Z"])


def report(task_slug: str, attempt_id: str) -> st.SearchStrategy:
    return body(
        {
            "executor": st.sampled_from(["ext", "local", "http", "other"]),
            "native_task_id": TEXT.map(str),
            "native_run_id": st.sampled_from(["nr-1", "nr-2", "nr-seed"]),
            "task": st.sampled_from([task_slug, "nope"]),
            "status": STATUS,
        },
        {
            "attempt_id": st.sampled_from([attempt_id, "00000000-0000-0000-0000-000000000000", None]),
            "created_at": DATETIME,
            "phase": st.sampled_from(["preflight", "execute", "nope", ""]),
            "message": TEXT,
        },
    )


def endpoints(world) -> dict[str, tuple[str, st.SearchStrategy]]:
    slug, attempt_id = world["task"].slug, str(world["attempt"].id)
    return {
        "tasks": (
            "/api/v1/tasks/",
            body(
                {
                    "slug": SLUG,
                    "title": TEXT,
                    "project": st.sampled_from(["policy", "nope"]),
                    "procedure": st.sampled_from(["aemeath", "nope"]),
                },
                {
                    "plan": st.none(),
                    "params": ANYTHING,
                    "assignee": st.sampled_from(["owner-bot", "nobody", None]),
                    "max_attempts": st.integers(min_value=-5, max_value=2**40),
                },
            ),
        ),
        "rerun": (
            f"/api/v1/tasks/{slug}/rerun/",
            body(
                {"reason": TEXT},
                {
                    "assignee": st.sampled_from(["owner-bot", "nobody", None]),
                    "override_budget": st.booleans(),
                    "supersede_active": st.booleans(),
                },
            ),
        ),
        "native-runs": ("/api/v1/native-runs/", report(slug, attempt_id)),
        "batch": (
            "/api/v1/native-runs/batch/",
            st.one_of(
                st.fixed_dictionaries({"reports": st.lists(report(slug, attempt_id), max_size=4)}),
                ANYTHING,
            ),
        ),
        "phases": (
            f"/api/v1/attempts/{attempt_id}/phases/",
            body(
                {
                    "phase": st.sampled_from(["preflight", "execute", "finalize", "nope"]),
                    "outcome": st.sampled_from(["passed", "failed", "maybe"]),
                },
                {"message": TEXT},
            ),
        ),
    }


HEADERS = st.fixed_dictionaries(
    {},
    optional={
        "HTTP_IDEMPOTENCY_KEY": st.sampled_from(["", "k-1", "k 2", "\u00e9", "x" * 201, "k-fuzz"]),
    },
)


def raw_body(document) -> st.SearchStrategy:
    # Mostly the document as JSON; sometimes bytes no parser should accept.
    return st.one_of(
        st.just(json.dumps(document)),
        st.just(json.dumps(document)),
        st.binary(max_size=64),
        st.just("[" * 200 + "]" * 200),
    )


@pytest.mark.parametrize("name", ["tasks", "rerun", "native-runs", "batch", "phases"])
def test_write_endpoints_never_fail_and_refusals_write_nothing(world, operator, executor, name):
    path, documents = endpoints(world)[name]
    client = executor if name in {"native-runs", "batch", "phases"} else operator

    @FUZZ
    @given(data=documents.flatmap(raw_body), headers=HEADERS)
    def run(data, headers):
        before = row_counts()
        response = client.post(path, data, content_type="application/json", **headers)
        assert response.status_code < 500, (response.status_code, response.content[:300])
        if response.status_code >= 400:
            assert_api_error(response, response.status_code)
            assert row_counts() == before, (response.status_code, response.content[:300])

    run()
