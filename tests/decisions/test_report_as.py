"""decide_report_as: which executors a token may report as. No database."""

import pytest

from missioncontrol.roles import decide_report_as

CASES = [
    # executor, superuser, granted, allowed, reason contains
    ("ext", False, {"ext"}, True, None),
    ("ext", False, {"ext", "cloud"}, True, None),
    ("cloud", False, {"ext"}, False, "only as ext; not as 'cloud'"),
    ("ext", False, set(), False, "confined to no executor"),
    ("local", False, {"local"}, False, "built-in 'local'"),
    ("local", True, set(), False, "built-in 'local'"),
    ("anything", True, set(), True, None),
    ("Ext", False, {"ext"}, False, "not as 'Ext'"),
]


@pytest.mark.parametrize(("executor", "superuser", "granted", "allowed", "reason"), CASES)
def test_decide_report_as(executor, superuser, granted, allowed, reason):
    refusal = decide_report_as(executor=executor, superuser=superuser, granted=frozenset(granted))
    if allowed:
        assert refusal is None
    else:
        assert refusal is not None and refusal.executor == executor
        assert reason in refusal.reason


def test_the_refused_executor_is_the_built_in_one():
    from missioncontrol.roles import LOCAL_EXECUTOR
    from planning.models import Procedure
    from retries.executors.local import NAME

    assert LOCAL_EXECUTOR == Procedure.Executor.LOCAL == NAME
