"""manage.py create_api_token USERNAME --role ROLE

Creates the user if needed, puts it in the role's group and prints its API
token; the key is alone on the last line, so scripts can take ``tail -1``."""

from django.core.management.base import BaseCommand, CommandError

from missioncontrol.api.services import api_token_create
from missioncontrol.errors import ServiceError
from missioncontrol.roles import ROLES


class Command(BaseCommand):
    help = "Create (or show) the API token of USERNAME, creating the user and putting it in --role."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=ROLES, help="Django group the user is put in.")

    def handle(self, *args, username: str, role: str, **options):
        try:
            token = api_token_create(username=username, role=role)
        except ServiceError as exc:
            raise CommandError(f"{exc.detail} {exc.errors or ''}".strip()) from exc
        self.stdout.write(f"Token of {username} (role {role}); send it as 'Authorization: Token <key>'.")
        self.stdout.write(token.key)
