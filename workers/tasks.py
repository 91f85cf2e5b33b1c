"""Celery tasks of the workers app: thin edges that call services."""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field

from celery import shared_task
from django.db import InterfaceError, OperationalError

from workers.services.bargaining import deferred_release
from workers.services.delivery import envelope_deliver_onward
from workers.services.outbox import outbox_sweep
from workers.services.transport import CONTROLLER_QUEUE, DELIVER_TASK

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PeriodicTaskSpec:
    """A task beat runs every ``every_seconds``, synced into the beat tables by ``beat_sync``.

    ``name`` names the schedule (its row); ``task`` the Celery task it runs (by default the
    same), with ``kwargs``: one task may have several schedules (an audit per controller).
    """

    name: str
    every_seconds: int
    queue: str
    description: str
    task: str = ""
    kwargs: dict[str, str] = field(default_factory=dict)

    @property
    def task_name(self) -> str:
        return self.task or self.name


# Declared here, next to the tasks; `manage.py beat_sync` writes them to django_celery_beat.
PERIODIC_TASKS = (
    PeriodicTaskSpec(
        name="vsm.epochs.release_deferred",
        # A minute's lag at most after an epoch ends; each run is one indexed query when idle.
        every_seconds=60,
        queue=CONTROLLER_QUEUE,
        description="Send tasks deferred for want of budget back to their controllers once "
        "their epoch has passed.",
    ),
    PeriodicTaskSpec(
        name="vsm.outbox.sweep",
        # Half the default grace period: lost work waits at most about 1.5 grace periods.
        every_seconds=30,
        queue=CONTROLLER_QUEUE,
        description="Send again every unhandled envelope older than VSM_OUTBOX_GRACE_SECONDS "
        "(its message was lost: a broker restart, a crash between commit and send).",
    ),
)


# A database that is down or restarting (OperationalError, InterfaceError: a lost
# connection, a refused one, SQLite's "database is locked") must not cost the message: the
# delivery is sent again with a growing delay (1, 2, 4… up to 60 s, jittered) before this
# one is acknowledged, 20 times, about a quarter of an hour. Past that the envelope is still
# unhandled in the database and the outbox sweeper sends it again.
DATABASE_RETRIES = 20


# Nobody reads a delivery's return value: no result row per hop.
@shared_task(
    name=DELIVER_TASK,
    bind=True,
    ignore_result=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=DATABASE_RETRIES,
)
def deliver(self, envelope_id: str, queue: str | None = None) -> str:  # type: ignore[no-untyped-def]
    """Hand an envelope to its target node: a metasystem's controller or a leaf's harness,
    then the controller hops that follow from it if this worker consumes their queue
    (``envelope_deliver_onward``).

    Delivery is at least once (acks late); both handlers dedupe by envelope id. A database
    error is retried (above); the failed attempt's transaction rolled back, so the retry
    starts clean, and Celery's task_prerun hook drops the broken connection first.
    """
    worker = str(self.request.hostname or "unknown")
    return envelope_deliver_onward(
        envelope_id=envelope_id,
        worker=worker,
        queue=queue,
        serves_controllers=CONTROLLER_QUEUE in self.app.amqp.queues.consume_from,
    )


@shared_task(name="vsm.diagnostics.digest")
def diagnostics_digest(payload: str) -> str:
    """Return the sha256 of ``payload``: a round trip that proves a worker is alive.

    Also what the embedded-broker soak test uses to show that no message is
    lost or corrupted on the way.
    """
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@shared_task(name="vsm.bench.hop")
def bench_hop(remaining: int, started: float, marker: str) -> None:
    """One hop of bench/directives.py's baseline: a no-op that publishes the next hop.

    The chain has the depth of a directive's trip, each hop a message through the
    same broker and worker but with no database work of its own. The last hop
    runs under the task id ``marker``, so its result row tells the benchmark the
    chain has finished; ``started`` (wall clock) only travels along for the log.
    """
    if remaining <= 0:
        logger.debug("bench chain %s finished after %.1f ms", marker, (time.time() - started) * 1e3)
        return
    last = {"task_id": marker} if remaining == 1 else {}
    bench_hop.apply_async(args=[remaining - 1, started, marker], queue=CONTROLLER_QUEUE, **last)


@shared_task(name="vsm.epochs.release_deferred")
def release_deferred() -> int:
    """Release the tasks deferred in epochs that have passed; returns how many went back."""
    return deferred_release()


@shared_task(name="vsm.outbox.sweep", ignore_result=True)
def sweep_outbox() -> int:
    """Send again the envelopes whose message was lost; returns how many were sent."""
    return len(outbox_sweep().sent)
