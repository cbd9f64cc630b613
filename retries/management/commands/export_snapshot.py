from django.core.management.base import BaseCommand, CommandError

from retries.snapshot import SnapshotError, snapshot_export


class Command(BaseCommand):
    help = (
        "Write a JSON snapshot of every task, its current attempt and its status (schema: "
        "docs/snapshot-schema.md) to PATH: through a temporary file in the same folder that is "
        "flushed, read back and validated, then atomically renamed over PATH. On any failure the "
        "previous file is left untouched and the command exits 1."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", help="Where to write the snapshot.")

    def handle(self, *args, path: str, **options):
        try:
            result = snapshot_export(path=path)
        except SnapshotError as exc:
            for problem in exc.problems:
                self.stderr.write(problem)
            raise CommandError(exc.detail, returncode=1) from exc
        except OSError as exc:
            raise CommandError(f"Could not write {path}: {exc}. The previous file is untouched.", returncode=1) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"Wrote {result.path}: {result.tasks} task(s), {result.size} bytes, ledger position {result.ledger_position}."
            )
        )
