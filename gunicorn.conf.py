"""gunicorn's settings for Mission Control in production:

    gunicorn -c gunicorn.conf.py missioncontrol.wsgi

(gunicorn also reads ./gunicorn.conf.py by itself when started from the
checkout). Anything else (bind address, timeouts) comes from the command line
or GUNICORN_CMD_ARGS as usual; both also override the settings below.

Workers and threads: WORKERS_PER_CPU × the CPUs, THREADS each (gunicorn runs
its gthread worker when threads > 1, else sync), the deployment measured best
on a 2-CPU box by ``python -m bench --deployments`` (docs/performance.md,
"Deployment"); GUNICORN_WORKERS (or gunicorn's own WEB_CONCURRENCY) and
GUNICORN_THREADS set them instead. The bench serves the app with these
defaults too.

Request limits live in Django, where they answer in the API's JSON error
shape (README, "Limits"): a URL over REQUEST_MAX_URL_BYTES (4096) is a 414
from missioncontrol.middleware. gunicorn's own request-line limit is set to
its largest finite value, so that every URL Django could refuse reaches
Django; a request line past even that, or one gunicorn cannot parse at all,
is answered by gunicorn itself, and missioncontrol.gunicorn_errors makes
that answer the JSON shape too instead of gunicorn's HTML page.
"""

import os

WORKERS_PER_CPU = 2
THREADS = 2

workers = int(
    os.environ.get("GUNICORN_WORKERS") or os.environ.get("WEB_CONCURRENCY") or WORKERS_PER_CPU * (os.cpu_count() or 1)
)
threads = int(os.environ.get("GUNICORN_THREADS") or THREADS)

limit_request_line = 8190  # gunicorn's maximum (0 would mean unbounded)
limit_request_fields = 100
limit_request_field_size = 8190
# No control socket: it sits at one path per user ($HOME/.gunicorn/gunicorn.ctl), shared by every
# gunicorn on the machine; nothing but the HTTP port should listen.
control_socket_disable = True


def post_worker_init(worker):
    from missioncontrol.gunicorn_errors import install

    install()


# Server hooks, one function per concern.
def metrics_child_exit(server, worker) -> None:
    """Prometheus multiprocess mode: a worker that exited hands its live
    gauge files back (counters and histograms of dead workers still count)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def child_exit(server, worker) -> None:
    metrics_child_exit(server, worker)
