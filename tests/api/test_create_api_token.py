"""manage.py create_api_token USERNAME --role ROLE"""

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from missioncontrol.roles import has_role

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    from io import StringIO

    out = StringIO()
    call_command("create_api_token", *args, stdout=out)
    return out.getvalue()


def test_creates_the_user_puts_it_in_the_role_and_prints_the_key_last():
    output = run("ci-executor", "--role", "executor")
    key = output.strip().splitlines()[-1]
    assert len(key) == 40 and " " not in key
    user = get_user_model().objects.get(username="ci-executor")
    assert has_role(user, "executor") and not has_role(user, "operator")
    assert not user.has_usable_password()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get("/api/v1/tasks/").status_code == 200


def test_running_again_keeps_the_key_and_adds_the_role():
    key = run("someone", "--role", "viewer").strip().splitlines()[-1]
    again = run("someone", "--role", "operator").strip().splitlines()[-1]
    user = get_user_model().objects.get(username="someone")
    assert again == key and has_role(user, "operator")


def test_bad_input_is_refused_and_creates_nothing():
    with pytest.raises(CommandError):
        run("someone", "--role", "wizard")
    with pytest.raises(CommandError):
        run("not a valid username!", "--role", "viewer")
    assert not get_user_model().objects.exists()
