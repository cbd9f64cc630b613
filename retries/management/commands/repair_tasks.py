from django.core.management.base import BaseCommand, CommandError

from missioncontrol.errors import ServiceError
from planning.services import agent_get
from retries.services import check_reason, task_repair, task_repair_previews


class Command(BaseCommand):
    help = (
        "Repair tasks (rule 9): supersede every earlier attempt, retire their native ids, keep the "
        "frozen assignee unless --assignee is given, clear an inconsistency mark and start a fresh "
        "repair attempt. Unknown or never-launched tasks make the command refuse everything, unless "
        "--keep-going is given; then the others are repaired and the command still exits 1."
    )

    def add_arguments(self, parser):
        parser.add_argument("slugs", nargs="+", metavar="SLUG", help="Tasks to repair.")
        parser.add_argument("--reason", required=True, help="Why: kept in the ledger.")
        parser.add_argument("--assignee", default=None, help="Agent to freeze on the new attempts.")
        parser.add_argument("--dry-run", action="store_true", help="Print what would be done; change nothing.")
        parser.add_argument(
            "--keep-going", action="store_true", help="Repair the tasks that can be repaired even if others cannot."
        )
        parser.add_argument("--actor", default="repair_tasks", help="Name recorded in the ledger.")

    def handle(
        self, *args, slugs, reason, assignee=None, dry_run=False, keep_going=False, actor="repair_tasks", **options
    ):
        try:
            reason = check_reason(reason)  # the services' own rule, checked before the dry run too
        except ServiceError as exc:
            raise CommandError(" ".join((exc.errors or {}).get("reason", [exc.detail]))) from exc
        agent = None
        if assignee:
            try:
                agent = agent_get(name=assignee, active_only=True)
            except ServiceError as exc:
                raise CommandError(" ".join((exc.errors or {}).get("assignee", [exc.detail]))) from exc
        slugs = list(dict.fromkeys(slugs))
        # The repair's own decision, read without writing: what --dry-run
        # prints is what the repair does.
        previews = task_repair_previews(slugs=slugs, reason=reason, assignee=agent)
        refused = [p for p in previews if not p.allowed]
        for preview in refused:
            assert preview.refusal is not None  # not allowed means refused
            self.stderr.write(f"{preview.slug}: refused: {preview.refusal.detail}")
        if refused and not keep_going:
            raise CommandError(
                f"{len(refused)} task(s) cannot be repaired; nothing was changed (use --keep-going to repair the others).",
                returncode=1,
            )
        failures = len(refused)
        for preview in previews:
            if not preview.allowed:
                continue
            if dry_run:
                self.stdout.write(f"{preview.slug}: would {preview.summary()}")
                continue
            try:
                attempt = task_repair(slug=preview.slug, actor=actor, reason=reason, assignee=assignee).attempt
            except ServiceError as exc:
                failures += 1
                self.stderr.write(f"{preview.slug}: refused: {exc.detail}")
                if not keep_going:
                    raise CommandError("Stopped; the tasks before this one were repaired.", returncode=1) from exc
                continue
            self.stdout.write(
                f"{preview.slug}: repaired: {preview.summary()} -> attempt #{attempt.number} "
                f"{attempt.id} for {attempt.requested_assignee.name if attempt.requested_assignee else 'nobody'}"
            )
        if failures:
            raise CommandError(f"{failures} task(s) could not be repaired.", returncode=1)
        if dry_run:
            self.stdout.write(self.style.SUCCESS("Dry run: nothing was changed."))
