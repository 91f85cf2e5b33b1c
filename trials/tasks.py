"""Celery tasks of the trials app (thin: ids in, a service call) and the audit schedules.

Each audited controller has its own beat schedule, declared here from the champion genome
(:func:`audit_schedules`) and written to django-celery-beat's tables by ``manage.py
beat_sync``, where operators may change its interval or disable it in the admin. The tick
and the evolution generation (every metasystem, hourly) are fixed schedules
(``PERIODIC_TASKS``), editable there too.
"""

from __future__ import annotations

import logging

from celery import shared_task

from organization.selectors import champion_genome
from trials.models import AuditRun
from trials.services.audits import audit_run, audited_controller_ids
from trials.services.evolution import evolution_generation_all, evolution_generation_run
from trials.services.schedule import trials_tick
from workers.errors import Rejected
from workers.services.transport import CONTROLLER_QUEUE
from workers.tasks import PeriodicTaskSpec

logger = logging.getLogger(__name__)

AUDIT_TASK = "vsm.trials.audit"
TICK_TASK = "vsm.trials.tick"
EVOLUTION_TASK = "vsm.trials.evolution"
# When the node's System 3* config names no interval of its own.
DEFAULT_AUDIT_INTERVAL_SECONDS = 3600
SCHEDULE_NAME_LENGTH = 200  # django_celery_beat's PeriodicTask.name


# The trials app's fixed schedules (beat_sync writes them with the audits').
PERIODIC_TASKS: tuple[PeriodicTaskSpec, ...] = (
    PeriodicTaskSpec(
        name=TICK_TASK,
        # Evidence triggers evaluations as it arrives; this is the safety net, and what
        # starts a queued trial once a controller's slot is free.
        every_seconds=30,
        queue=CONTROLLER_QUEUE,
        description="Evaluate every live trial (deadlines, missed evidence), check the watch "
        "window of recent promotions, and activate queued trials where a controller has none.",
    ),
    PeriodicTaskSpec(
        name=EVOLUTION_TASK,
        # A generation only queues (at most 4 trials, a population of 6 per controller) and
        # trials run for days: hourly is plenty, and an idle run is a few indexed reads.
        every_seconds=3600,
        queue=CONTROLLER_QUEUE,
        description="Run an evolution generation for every metasystem of the champion: queue "
        "bounded canary trials (parsimony guardrail, retiring a low-fitness child, recombining "
        "elite parents).",
    ),
)


def audit_schedule_name(controller_node_id: str) -> str:
    return f"{AUDIT_TASK}:{controller_node_id}"[:SCHEDULE_NAME_LENGTH]


def audit_schedules() -> list[PeriodicTaskSpec]:
    """One audit schedule per metasystem of the champion whose System 3* config has
    ``audit_enabled``, every ``audit_interval_seconds`` (else an hour), on the controllers'
    queue. None before bootstrap."""
    genome = champion_genome()
    if genome is None:
        return []
    return [
        PeriodicTaskSpec(
            name=audit_schedule_name(node_id),
            task=AUDIT_TASK,
            kwargs={"controller_node_id": node_id},
            every_seconds=genome.nodes[node_id].system_3_star.audit_interval_seconds
            or DEFAULT_AUDIT_INTERVAL_SECONDS,
            queue=CONTROLLER_QUEUE,
            description=f"System 3* audit of the subtree of {node_id}: count its recent "
            "traces' failures and queue a trial for what they suggest.",
        )
        for node_id in audited_controller_ids(genome)
    ]


@shared_task(name=AUDIT_TASK)
def audit(controller_node_id: str) -> str:
    """Run one System 3* audit of the controller; returns the AuditRun id.

    A schedule whose controller is gone (or no longer a metasystem) until the next
    ``beat_sync`` is skipped with a warning: retrying would not help.
    """
    try:
        run = audit_run(
            controller_node_id=controller_node_id,
            trigger=AuditRun.Trigger.BEAT,
            actor="beat:system_3_star",
        )
    except Rejected as refusal:
        logger.warning("audit of %s skipped: %s", controller_node_id, refusal)
        return f"skipped: {refusal}"
    return str(run.id)


@shared_task(name=TICK_TASK)
def tick() -> dict[str, list[str]]:
    """The trials' periodic step (``trials.services.schedule.trials_tick``)."""
    report = trials_tick()
    return {
        "evaluated": report.evaluated,
        "watched": report.watched,
        "activated": report.activated,
        "failed": report.failed,
    }


@shared_task(name=EVOLUTION_TASK)
def evolution(controller_node_id: str | None = None) -> dict[str, str]:
    """An evolution generation for every metasystem of the champion, or for the one named
    (an operator may add such a schedule in the admin). Per controller: the generation's id,
    ``none: <why>``, ``skipped: <why>`` or ``failed``."""
    actor = "beat:system_3_evolution"
    if controller_node_id is None:
        return evolution_generation_all(actor=actor)
    try:
        generation = evolution_generation_run(controller_node_id=controller_node_id, actor=actor)
    except Rejected as refusal:
        logger.warning("evolution generation of %s skipped: %s", controller_node_id, refusal)
        return {controller_node_id: f"skipped: {refusal}"}
    return {controller_node_id: generation.id if generation else "none"}
