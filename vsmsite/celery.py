"""The Celery application.

Worker: ``celery -A vsmsite worker``; beat: ``celery -A vsmsite beat``. Settings
are the ``CELERY_*`` names in vsmsite/settings.py (acks late, reject on worker
lost, time limits, task events on).
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.signals import task_postrun, task_prerun

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


def _close_old_connections(**_: Any) -> None:
    from django.db import close_old_connections

    close_old_connections()


task_prerun.connect(_close_old_connections, weak=False)
task_postrun.connect(_close_old_connections, weak=False)
