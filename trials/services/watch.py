"""A promotion's watch window: the new champion's first tasks against the old champion's.

The window is ``Trial.watch_tasks`` traces of work at the trial's controller under the
promoted version. A regression (significantly worse success, or a safety breach) rolls the
champion back automatically, recorded and raised as a pain signal; otherwise the
promotion is kept.
"""

from __future__ import annotations

from ledger import kinds
from ledger.models import TaskTrace
from ledger.services import ledger_batch
from trials.domain.decision import ArmSummary, decide, significantly_worse
from trials.events import trial_record
from trials.models import Trial
from trials.services.evaluation import (
    Arms,
    arm_traces,
    decision_settings,
    observation,
    trial_arms,
)
from trials.services.promotion import trial_rollback


def watch_check(*, trial_id: str, actor: str = "system:trials") -> Trial:
    """Judge a promotion once its watch window is full: the new champion's traces at the
    trial's controller against the old champion's from the trial. Significantly worse, or a
    safety breach, rolls back; otherwise the promotion is kept (``trial_watch_passed``).
    Before the window is full, nothing happens."""
    with ledger_batch():
        trial = Trial.objects.select_for_update().select_related("suggestion").get(pk=trial_id)
        if trial.state != Trial.State.PROMOTED or trial.watch != Trial.Watch.WATCHING:
            return trial
        since = trial.ended_at or trial.updated_at
        after = arm_traces(
            TaskTrace.objects.filter(
                scopes__node_id=trial.controller_node_id,
                scopes__started_at__gte=since,
                genome_id=trial.promoted_version_id,
            ),
            limit=trial.watch_tasks,
        )
        if len(after) < trial.watch_tasks:
            return trial
        before: Arms = trial_arms(trial)
        settings = decision_settings(trial)
        decision = decide(
            ArmSummary.of(observation(trace, set()) for trace in after),
            ArmSummary.of(before.observations(before.champion)),
            settings,
            deadline_passed=True,
        )
        numbers = decision.numbers
        if significantly_worse(decision):
            trial_rollback(
                trial=trial,
                actor=actor,
                reason=f"the new champion regressed in its first {len(after)} tasks: "
                f"{decision.reason}",
            )
            return trial
        trial.watch = Trial.Watch.PASSED
        trial.save(update_fields=["watch", "updated_at"])
        trial_record(
            trial,
            kinds.TRIAL_WATCH_PASSED,
            {"watched_traces": len(after), "numbers": numbers},
            actor=actor,
        )
    return trial
