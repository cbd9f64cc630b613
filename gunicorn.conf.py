"""gunicorn reads this file from the working directory (or ``-c``):
``gunicorn missioncontrol.wsgi``. Settings stay in the environment; only
server hooks live here. Each hook calls functions named after their
concern, so that other concerns can add theirs beside them."""

import os


def metrics_child_exit(server, worker) -> None:
    """Prometheus multiprocess mode: a worker that exited hands its live
    gauge files back (counters and histograms of dead workers still count)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def child_exit(server, worker) -> None:
    metrics_child_exit(server, worker)
