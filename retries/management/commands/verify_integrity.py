from django.core.management.base import BaseCommand, CommandError

from retries.integrity import integrity_problems, integrity_verify_and_mark


class Command(BaseCommand):
    help = (
        "Re-derive every task's and attempt's status from the ledger and report each row that "
        "disagrees. Inconsistent tasks are marked so reconciliation leaves them for a repair. "
        "Exits 1 when anything disagrees."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--no-mark", action="store_true", help="Only report; do not mark inconsistent tasks."
        )

    def handle(self, *args, no_mark: bool = False, **options):
        problems = integrity_problems() if no_mark else integrity_verify_and_mark(actor="verify_integrity")
        for problem in problems:
            self.stdout.write(str(problem))
        if problems:
            tasks = len({p.task_id for p in problems})
            raise CommandError(f"{len(problems)} disagreement(s) in {tasks} task(s).", returncode=1)
        self.stdout.write(self.style.SUCCESS("Ledger and rows agree."))
