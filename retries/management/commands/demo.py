from django.core.management.base import BaseCommand

from retries.demo.load import TASKS, demo_load


class Command(BaseCommand):
    help = (
        "Load the demo (seed 000): agents, projects, the aemeath and shorekeeper procedures on the local "
        "executor, four tasks whose failed attempt from the old runtime comes from the shipped retry history, and demo users. Idempotent."
    )

    def handle(self, *args, **options):
        report = demo_load()
        for line in report.created:
            self.stdout.write(f"created  {line}")
        self.stdout.write(f"{len(report.created)} created, {len(report.existing)} already there.")
        self.stdout.write("")
        self.stdout.write("Rerun these to watch a fresh attempt run while the old runtime's reports are refused:")
        for spec in TASKS:
            self.stdout.write(f"  {spec.slug}")
        self.stdout.write("")
        self.stdout.write(
            self.style.WARNING(
                "Demo users (demo only, never in production): operator/operator, viewer/viewer, admin/admin (superuser)."
            )
        )
