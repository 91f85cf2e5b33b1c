"""The Celery application.

Worker: ``celery -A vsmsite worker``; beat: ``celery -A vsmsite beat``. Settings
are the ``CELERY_*`` names in vsmsite/settings.py (acks late, reject on worker
lost, time limits, task events on).
"""

from __future__ import annotations

import os

from celery import Celery

from vsmsite import broker

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vsmsite.settings")

# ``embedded://`` must resolve before any connection is made, in every process.
broker.register()

app = Celery("vsmsite")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
