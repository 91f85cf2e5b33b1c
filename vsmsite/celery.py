"""The Celery application.

Worker: ``celery -A vsmsite worker``; beat: ``celery -A vsmsite beat``. Settings
are the ``CELERY_*`` names in vsmsite/settings.py (acks late, reject on worker
lost, time limits, task events on).
"""

from __future__ import annotations

import gc
import os
import threading
import time
from typing import Any

from celery import Celery
from celery.signals import (
    task_postrun,
    task_prerun,
    worker_init,
    worker_process_init,
    worker_ready,
)

from vsmsite import broker

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vsmsite.settings")

# ``embedded://`` must resolve before any connection is made, in every process.
broker.register()

app = Celery("vsmsite")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Celery's Django fixup closes every database connection around every task
# unless this is set, which costs a new connection per hop (3-7 ms on
# PostgreSQL, measured in bench/directives.py). With it set, the signal
# handlers below let CONN_MAX_AGE and CONN_HEALTH_CHECKS decide instead.
app.conf.CELERY_DB_REUSE_MAX = 10_000
app.autodiscover_tasks()

# A connection that finished a task less than this many seconds ago goes into the next one
# without the health check (CONN_HEALTH_CHECKS' round trip before the first statement,
# one per hop on a directive's path). A connection that broke during a task has its error
# recorded, so the check after that task closes it; one idle for longer is checked as
# Django checks a request's. A database restarted in the gap of a busy worker costs the
# next delivery one retry (vsm.deliver retries database errors), never a wedged worker.
HEALTH_CHECK_AFTER_IDLE_SECONDS = 1.0
# SQLite connections (the embedded default) are kept this long by a worker rather than
# reopened for every task (Django's default CONN_MAX_AGE of 0): a new one costs a connect,
# the PRAGMAs and a schema read on its first statements, about 1.5 ms per hop here.
SQLITE_WORKER_CONN_MAX_AGE = 60

_thread = threading.local()


def _task_starting(**_: Any) -> None:
    from django.db import close_old_connections, connections

    close_old_connections()  # too old: closed; else the health check is armed
    finished_at = getattr(_thread, "task_finished_at", None)
    if finished_at is not None and time.monotonic() - finished_at < HEALTH_CHECK_AFTER_IDLE_SECONDS:
        for conn in connections.all(initialized_only=True):
            conn.health_check_done = True  # type: ignore[attr-defined]  # not in the stubs


def _task_finished(**_: Any) -> None:
    from django.db import close_old_connections

    close_old_connections()  # errors since the last commit: checked, closed if broken
    _thread.task_finished_at = time.monotonic()


def _keep_sqlite_connections(**_: Any) -> None:
    from django.db import connections

    for alias in connections:
        config = connections.settings[alias]
        if config["ENGINE"] == "django.db.backends.sqlite3" and not config.get("CONN_MAX_AGE"):
            config["CONN_MAX_AGE"] = SQLITE_WORKER_CONN_MAX_AGE


def _spare_the_collector(**_: Any) -> None:
    """Keep the cyclic garbage collector off what a worker loaded at start-up.

    Everything imported by then (Django, Celery, the apps, their modules' objects) lives
    as long as the process; ``gc.freeze`` moves it out of the collector's generations, so
    a full collection, which a hop's allocations trigger every few directives, no longer
    walks it."""
    gc.collect()
    gc.freeze()


task_prerun.connect(_task_starting, weak=False)
task_postrun.connect(_task_finished, weak=False)
worker_init.connect(_keep_sqlite_connections, weak=False)
# The threads pool runs tasks in the worker's own process, ready once it has started; a
# prefork pool's children start from a fork of it and freeze their own copy.
worker_ready.connect(_spare_the_collector, weak=False)
worker_process_init.connect(_spare_the_collector, weak=False)
