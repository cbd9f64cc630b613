"""Ledger listeners hear committed facts only, once per write, and can
never break the write that committed them."""

import pytest
from django.db import transaction

from planning import ledger
from planning.ledger import ledger_append, ledger_batch, ledger_listener, ledger_listener_remove
from tests.factories import TaskFactory
from tests.steps import launch

pytestmark = pytest.mark.django_db


@pytest.fixture
def heard():
    got: list[list] = []

    def listener(facts):
        got.append([f.type for f in facts])

    ledger_listener(listener)
    try:
        yield got
    finally:
        ledger_listener_remove(listener)


def test_facts_are_heard_after_commit_per_write(heard, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        ledger_append(type="test.one", actor="t")
        with ledger_batch():
            ledger_append(type="test.two", actor="t")
            ledger_append(type="test.three", actor="t")
        assert heard == []  # nothing before the commit
    assert heard == [["test.one"], ["test.two", "test.three"]]


def test_nothing_is_heard_for_a_rolled_back_transaction_or_savepoint(heard, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(RuntimeError), transaction.atomic():
            ledger_append(type="test.lost", actor="t")
            raise RuntimeError
        with transaction.atomic():
            ledger_append(type="test.kept", actor="t")
            try:
                with transaction.atomic():
                    ledger_append(type="test.savepoint_lost", actor="t")
                    raise RuntimeError
            except RuntimeError:
                pass
    assert heard == [["test.kept"]]


def test_a_failing_listener_is_logged_and_the_others_still_hear(heard, django_capture_on_commit_callbacks, caplog):
    def broken(facts):
        raise ValueError("listener bug")

    ledger_listener(broken)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            task = TaskFactory()
            launch(task)
    finally:
        ledger_listener_remove(broken)
    assert any("attempt.requested" in types for types in heard)
    assert "ledger listener" in caplog.text and "listener bug" in caplog.text


def test_registering_twice_keeps_one():
    def listener(facts):
        pass

    ledger_listener(listener)
    ledger_listener(listener)
    try:
        assert ledger._listeners.count(listener) == 1
    finally:
        ledger_listener_remove(listener)
