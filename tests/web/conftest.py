import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from missioncontrol.roles import EXECUTOR, OPERATOR, VIEWER


def make_user(username: str, role: str | None) -> User:
    user = User.objects.create_user(username=username, password="pw-" + username)
    if role:
        # Transactional tests flush the groups the migration made: get_or_create.
        user.groups.add(Group.objects.get_or_create(name=role)[0])
    return user


def client_for(username: str, role: str | None) -> Client:
    client = Client()
    client.force_login(make_user(username, role))
    return client


@pytest.fixture
def operator_client(db):
    return client_for("olga", OPERATOR)


@pytest.fixture
def viewer_client(db):
    return client_for("victor", VIEWER)


@pytest.fixture
def executor_client(db):
    return client_for("exec-bot", EXECUTOR)


@pytest.fixture
def outsider_client(db):
    return client_for("otto", None)


HX = {"HTTP_HX_REQUEST": "true"}


def hx(target: str | None = None, **extra) -> dict:
    headers = dict(HX)
    if target:
        headers["HTTP_HX_TARGET"] = target
    headers.update(extra)
    return headers
