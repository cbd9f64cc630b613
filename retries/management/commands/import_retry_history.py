from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from retries.history import HistoryImportError, retry_history_import


class Command(BaseCommand):
    help = (
        "Import a legacy planning-retry-history.json (format in DESIGN.md). The whole file is checked "
        "first; on any problem every one is listed (entry index and field), nothing is written and the "
        "command exits 1. Entries already imported are skipped, so a re-import changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="Path of the retry history JSON file.")
        parser.add_argument("--dry-run", action="store_true", help="Check the file and print what would happen.")
        parser.add_argument("--actor", default="import_retry_history", help="Name recorded in the ledger.")

    def handle(self, *args, file: str, dry_run: bool = False, actor: str = "import_retry_history", **options):
        try:
            data = Path(file).read_bytes()
        except OSError as exc:
            raise CommandError(f"Cannot read {file}: {exc.strerror}.", returncode=2) from exc
        try:
            report = retry_history_import(data=data, actor=actor, dry_run=dry_run)
        except HistoryImportError as exc:
            for problem in exc.problems:
                self.stderr.write(str(problem))
            raise CommandError(exc.detail, returncode=1) from exc
        verb = "would import" if dry_run else "imported"
        for item in report.imported:
            retired = ", ".join(item.retired) or "no native ids"
            self.stdout.write(
                f"entry {item.index}: {verb} {item.task} attempt #{item.number} ({item.status}) as {item.attempt_id}; "
                f"retired {retired}"
            )
        for index, task, number in report.skipped:
            self.stdout.write(f"entry {index}: {task} attempt #{number} was imported already; skipped")
        for slug, (old, new) in report.status_changes.items():
            self.stdout.write(f"task {slug}: {'would move' if dry_run else 'moved'} from {old} to {new}")
        summary = f"{len(report.imported)} of {report.entries} entries {verb}, {len(report.skipped)} already imported."
        if dry_run:
            summary += " Dry run: nothing was written."
        self.stdout.write(self.style.SUCCESS(summary))
