"""manage.py create_api_token USERNAME --role ROLE [--executor NAME ...]

Creates the user if needed, puts it in the role's group and prints its API
token; the key is alone on the last line, so scripts can take ``tail -1``.
An executor token reports only as the executors named with ``--executor``
(repeatable; running again adds more); never as the built-in ``local``."""

from django.core.management.base import BaseCommand, CommandError

from missioncontrol.api.services import api_token_create
from missioncontrol.errors import ServiceError
from missioncontrol.roles import EXECUTOR, ROLES


class Command(BaseCommand):
    help = "Create (or show) the API token of USERNAME, creating the user and putting it in --role."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=ROLES, help="Django group the user is put in.")
        parser.add_argument(
            "--executor",
            action="append",
            default=[],
            dest="executors",
            metavar="NAME",
            help="An executor this executor token may report as (repeatable); with none it reads but reports for nobody.",
        )

    def handle(self, *args, username: str, role: str, executors: list[str], **options):
        try:
            token = api_token_create(username=username, role=role, executors=tuple(executors))
        except ServiceError as exc:
            raise CommandError(f"{exc.detail} {exc.errors or ''}".strip()) from exc
        self.stdout.write(f"Token of {username} (role {role}); send it as 'Authorization: Token <key>'.")
        granted = sorted(token.user.executor_grants.values_list("executor", flat=True))
        if role == EXECUTOR:
            self.stdout.write(
                f"It reports as: {', '.join(granted)}."
                if granted
                else "It reports as no executor yet: run again with --executor NAME."
            )
        self.stdout.write(token.key)
