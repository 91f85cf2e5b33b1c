"""The trials' periodic tick: what beat runs every half minute.

Evidence normally triggers an evaluation as it arrives; the tick is the safety net (an
evaluation that failed, a deadline that passed with no new trace, a promotion whose watch
window filled) and it starts the next queued trial wherever a controller's slot is free.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from organization.models import LiveTrial
from trials.errors import TrialConflict
from trials.models import Trial
from trials.services.evaluation import trial_evaluate
from trials.services.lifecycle import trial_activate
from trials.services.watch import watch_check

logger = logging.getLogger(__name__)


@dataclass
class TickReport:
    evaluated: list[str] = field(default_factory=list)
    watched: list[str] = field(default_factory=list)
    activated: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def trials_tick(*, actor: str = "system:trials") -> TickReport:
    """Evaluate every active trial, check every watch window, activate queued trials where a
    controller has no live one. Each step is its own transaction; one failing is logged and
    does not stop the others."""
    report = TickReport()
    for trial_id in Trial.objects.filter(state=Trial.State.ACTIVE).values_list("pk", flat=True):
        _step(
            report.evaluated,
            report.failed,
            trial_id,
            lambda t: trial_evaluate(trial_id=t, actor=actor),
        )
    watching = Trial.objects.filter(state=Trial.State.PROMOTED, watch=Trial.Watch.WATCHING)
    for trial_id in watching.values_list("pk", flat=True):
        _step(
            report.watched, report.failed, trial_id, lambda t: watch_check(trial_id=t, actor=actor)
        )
    busy = set(LiveTrial.objects.values_list("controller_node_id", flat=True))
    queued = Trial.objects.filter(state=Trial.State.QUEUED).exclude(controller_node_id__in=busy)
    for controller in sorted(set(queued.values_list("controller_node_id", flat=True))):
        try:
            started = trial_activate(actor=actor, controller_node_id=controller)
        except TrialConflict:
            continue  # another process started one a moment ago
        except Exception:
            logger.exception("activating a trial at %s failed", controller)
            report.failed.append(controller)
            continue
        if started is not None:
            report.activated.append(started.id)
    return report


def _step(done: list[str], failed: list[str], trial_id: str, action) -> None:  # type: ignore[no-untyped-def]
    try:
        action(trial_id)
        done.append(trial_id)
    except Exception:
        logger.exception("trial %s: periodic step failed", trial_id)
        failed.append(trial_id)
