"""Write the periodic tasks declared in code (``workers.tasks.PERIODIC_TASKS``) to the beat tables.

Idempotent: run it on every deploy (``make run`` does). Each declared task is created or
brought back to its declared interval, queue and description, and enabled; rows of other
periodic tasks are left alone.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from workers.tasks import PERIODIC_TASKS


class Command(BaseCommand):
    help = "Create or update the periodic tasks declared in workers.tasks.PERIODIC_TASKS."

    def handle(self, *args: Any, **options: Any) -> None:
        with transaction.atomic():
            for declared in PERIODIC_TASKS:
                interval = IntervalSchedule.objects.filter(
                    every=declared.every_seconds, period=IntervalSchedule.SECONDS
                ).first() or IntervalSchedule.objects.create(
                    every=declared.every_seconds, period=IntervalSchedule.SECONDS
                )
                _, created = PeriodicTask.objects.update_or_create(
                    name=declared.name,
                    defaults={
                        "task": declared.name,
                        "interval": interval,
                        "crontab": None,
                        "solar": None,
                        "clocked": None,
                        "queue": declared.queue,
                        "description": declared.description,
                        "enabled": True,
                    },
                )
                verb = "created" if created else "synced"
                self.stdout.write(
                    f"{declared.name}: every {declared.every_seconds}s on queue "
                    f"{declared.queue} ({verb})"
                )
