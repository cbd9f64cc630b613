"""Legacy retry history (DESIGN.md, "Legacy retry history").

Sites moving from the old system bring ``planning-retry-history.json``. The
file is never trusted blindly (seed 004): it is parsed and checked completely
first, every problem is reported with its entry index and field, and only a
file without a single problem is applied, in one transaction.

What an import does, per new entry:

- creates a historical ``Attempt`` (``imported=True``), already superseded,
  with the entry's number, status, request time and frozen assignee;
- retires the entry's native task and run ids for good, so no run carrying
  them is ever bound (rule 2);
- appends ``attempt.imported`` to the ledger (its ``data.status`` is what
  verify_integrity derives the attempt's status from) and raises the task's
  ``attempt_count`` by one.

It never creates a current attempt: the task's next attempt is made by a
rerun or a repair. A task still in ``draft`` whose newest imported attempt
ended (failed, succeeded or cancelled) takes that status through a
``task.status_changed`` event, so an operator can rerun or repair it; a task
in any other status keeps it.

Entries already imported (same ``attemptId``, or the same task and number
when ``attemptId`` is null) are skipped, so importing a file twice changes
nothing the second time.

The package: ``parse`` (shape and types, no database), ``checks`` (against
the locked rows), ``apply`` (``retry_history_import``).
"""

from .apply import ImportedAttempt, ImportReport, retry_history_import
from .parse import HistoryImportError, Problem, retry_history_parse

__all__ = [
    "HistoryImportError",
    "ImportReport",
    "ImportedAttempt",
    "Problem",
    "retry_history_import",
    "retry_history_parse",
]
