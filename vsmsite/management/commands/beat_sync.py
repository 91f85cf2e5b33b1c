"""Write the periodic tasks declared in code to django-celery-beat's tables.

Declared: the workers' and the trials' ``PERIODIC_TASKS`` and one System 3* audit per
audited controller of the champion (``trials.tasks.audit_schedules``). A project-wide
command, here because it reads both apps (``workers`` may not import ``trials``).

Idempotent; run it on every deploy and after a promotion changes the metasystems (``make
run`` does). Each schedule is **created** with its declared interval, enabled; an existing
row keeps its task, queue, kwargs and description in line with the code, and follows a
changed declared interval, but an interval or enabled flag an operator **edited in the
admin** is kept. Audit schedules of controllers no longer audited are disabled. ``--reset``
brings every declared row back to its declaration.

How an edit is told from a declaration: each row's description ends with what beat_sync
declared last (``[beat_sync: every 3600s, enabled]``); a row whose interval or enabled flag
differs from that was changed by someone else.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from trials import tasks as trials_tasks
from workers import tasks as workers_tasks
from workers.tasks import PeriodicTaskSpec

DECLARED_MARK = re.compile(r"\s*\[beat_sync: every (\d+)s, (enabled|disabled)\]\s*$")
PERIOD_SECONDS = {
    IntervalSchedule.DAYS: 86_400,
    IntervalSchedule.HOURS: 3600,
    IntervalSchedule.MINUTES: 60,
    IntervalSchedule.SECONDS: 1,
}


@dataclass(frozen=True)
class Declared:
    every_seconds: int
    enabled: bool


def with_mark(description: str, declared: Declared) -> str:
    state = "enabled" if declared.enabled else "disabled"
    return f"{description} [beat_sync: every {declared.every_seconds}s, {state}]"


def last_declared(row: PeriodicTask) -> Declared | None:
    match = DECLARED_MARK.search(row.description or "")
    if match is None:
        return None
    return Declared(int(match.group(1)), match.group(2) == "enabled")


def interval_seconds(row: PeriodicTask) -> int | None:
    """The row's period in seconds when it is a plain interval schedule, else None."""
    if row.interval is None or row.crontab_id or row.solar_id or row.clocked_id:
        return None
    factor = PERIOD_SECONDS.get(row.interval.period)
    return None if factor is None else row.interval.every * factor


def interval_of(every_seconds: int) -> IntervalSchedule:
    # No unique constraint on (every, period): an operator may have made a twin in the admin.
    return IntervalSchedule.objects.filter(
        every=every_seconds, period=IntervalSchedule.SECONDS
    ).order_by("id").first() or IntervalSchedule.objects.create(
        every=every_seconds, period=IntervalSchedule.SECONDS
    )


def shown(every_seconds: int | None, enabled: bool) -> str:
    every = "a schedule of its own" if every_seconds is None else f"every {every_seconds}s"
    return f"{every}, {'enabled' if enabled else 'disabled'}"


class Command(BaseCommand):
    help = (
        "Create or update the periodic tasks declared in code (PERIODIC_TASKS of workers "
        "and trials, and one System 3* audit per audited controller), keeping intervals "
        "and enabled flags edited in the admin."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--reset",
            action="store_true",
            help="Bring every declared schedule back to its declared interval and enabled flag.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        reset = bool(options["reset"])
        with transaction.atomic():
            declared = [
                *workers_tasks.PERIODIC_TASKS,
                *trials_tasks.PERIODIC_TASKS,
                *trials_tasks.audit_schedules(),
            ]
            for spec in declared:
                self.stdout.write(f"{spec.name}: {self._sync(spec, reset=reset)}")
            names = [spec.name for spec in declared]
            for row in PeriodicTask.objects.filter(task=trials_tasks.AUDIT_TASK).exclude(
                name__in=names
            ):
                self.stdout.write(f"{row.name}: {self._retire(row)}")

    def _sync(self, spec: PeriodicTaskSpec, *, reset: bool) -> str:
        declared = Declared(spec.every_seconds, True)
        row = PeriodicTask.objects.select_related("interval").filter(name=spec.name).first()
        fields = {
            "task": spec.task_name,
            "queue": spec.queue,
            "kwargs": json.dumps(spec.kwargs, sort_keys=True),
            "description": with_mark(spec.description, declared),
        }
        if row is None:
            PeriodicTask.objects.create(
                name=spec.name, interval=interval_of(spec.every_seconds), enabled=True, **fields
            )
            return f"{shown(spec.every_seconds, True)} on queue {spec.queue} (created)"
        # A row from before the marks was last written with the declaration itself.
        last = last_declared(row) or declared
        schedule_edited = not reset and interval_seconds(row) != last.every_seconds
        enabled_edited = not reset and row.enabled != last.enabled
        for name, value in fields.items():
            setattr(row, name, value)
        if not schedule_edited:
            row.interval = interval_of(spec.every_seconds)
            row.crontab = row.solar = row.clocked = None
        if not enabled_edited:
            row.enabled = declared.enabled
        row.save()
        now = shown(interval_seconds(row), row.enabled)
        if schedule_edited or enabled_edited:
            return (
                f"{now} on queue {spec.queue} (kept (edited in the admin); declared "
                f"{shown(declared.every_seconds, declared.enabled)})"
            )
        return f"{now} on queue {spec.queue} (synced)"

    def _retire(self, row: PeriodicTask) -> str:
        """An audit schedule whose controller is no longer audited: disabled, its last
        declared interval kept in the mark so a returning controller picks up from there."""
        try:
            controller = json.loads(row.kwargs or "{}").get("controller_node_id", "?")
        except (ValueError, AttributeError):
            controller = "?"
        last = last_declared(row)
        every = last.every_seconds if last else (interval_seconds(row) or 0)
        was_enabled = row.enabled
        row.enabled = False
        row.description = with_mark(
            f"System 3* audit of {controller}: no longer an audited metasystem of the champion "
            "genome.",
            Declared(every, False),
        )
        row.save()
        verb = "disabled" if was_enabled else "still disabled"
        return f"{verb} ({controller} is no longer an audited metasystem of the champion)"
