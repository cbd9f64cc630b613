from django.core.management.base import BaseCommand, CommandError

from planning.services import task_status_counts_rebuild
from retries.integrity import integrity_problems, integrity_verify_and_mark


class Command(BaseCommand):
    help = (
        "Re-derive every task's and attempt's status from the ledger and report each row that "
        "disagrees. Inconsistent tasks are marked so reconciliation leaves them for a repair. "
        "Exits 1 when anything disagrees. --repair first rebuilds the board's per-status task counts "
        "from the tasks (task rows that disagree with the ledger still need repair_tasks)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--no-mark", action="store_true", help="Only report; do not mark inconsistent tasks.")
        parser.add_argument(
            "--repair",
            action="store_true",
            help="Rebuild the per-status task counts from the tasks before checking.",
        )

    def handle(self, *args, no_mark: bool = False, repair: bool = False, **options):
        if repair:
            counts = task_status_counts_rebuild()
            shown = ", ".join(f"{status} {n}" for status, n in sorted(counts.items())) or "no tasks"
            self.stdout.write(f"Rebuilt the task status counts: {shown}.")
        problems = integrity_problems() if no_mark else integrity_verify_and_mark(actor="verify_integrity")
        for problem in problems:
            self.stdout.write(str(problem))
        if problems:
            tasks = len({p.task_id for p in problems if p.task_id is not None})
            raise CommandError(f"{len(problems)} disagreement(s) in {tasks} task(s).", returncode=1)
        self.stdout.write(self.style.SUCCESS("Ledger and rows agree."))
