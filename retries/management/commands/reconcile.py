from django.core.management.base import BaseCommand

from retries.reconcile import reconcile_pass


class Command(BaseCommand):
    help = (
        "Run one reconciliation pass: bind unbound native runs, poll pollable executors, fail stalled "
        "attempts, retry failed tasks within budget (else block them), bring lagging tasks in line, "
        "refresh plans and expire idempotency keys. Prints a summary."
    )

    def handle(self, *args, **options):
        summary = reconcile_pass()
        self.stdout.write(str(summary))
        if summary.errors:
            self.stderr.write(self.style.WARNING(f"{summary.errors} row(s) failed; see the log."))
