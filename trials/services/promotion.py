"""How a trial ends: promoted (then watched), pruned, inconclusive, or rolled back.

Promotion goes through the genome service: the suggestion's patch applied to the current
champion makes a new version, with the trial's id on its ``genome_patch_applied`` event.
When the champion is still the trial's base, that version has the candidate's content
exactly; when another change landed meanwhile, the patch is applied on top of it (and the
event says so), or, if it no longer applies, the trial waits for an operator.

After a promotion a watch window of ``Trial.watch_tasks`` traces compares the new
champion with the one before it; a regression rolls back automatically, recorded and
raised as a pain signal.
"""

from __future__ import annotations

import logging
from typing import Any

from django.utils import timezone

from ledger import kinds
from ledger.services import EventDraft, ledger_batch
from organization.genome import GenomeError
from organization.selectors import champion_version_id
from organization.services import genome_apply_patch, genome_rollback
from trials.events import trial_record
from trials.models import Trial
from trials.services.lifecycle import trial_end
from trials.services.selection import archive_record_outcome

logger = logging.getLogger(__name__)


def trial_promote(
    *,
    trial: Trial,
    actor: str,
    reason: str,
    evaluation: dict[str, Any] | None = None,
    context: EventDraft | None = None,
) -> Trial:
    """Make the trial's candidate the champion and open its watch window.

    Call with the trial row locked. A patch that no longer applies to the current champion
    leaves the trial ``inconclusive`` with the reason, for an operator.
    """
    with ledger_batch():
        previous = champion_version_id()
        rebased = previous != trial.base_version_id
        try:
            version = genome_apply_patch(
                patch=trial.suggestion.patch,
                actor=actor,
                reason=f"trial {trial.id} promoted: {reason}",
                trial_id=trial.id,
            )
        except GenomeError as error:
            trial_conclude(
                trial=trial,
                actor=actor,
                reason=f"promotion refused: the patch no longer applies to champion "
                f"{previous}: {error}",
                context=context,
            )
            return trial
        trial.promoted_version = version
        trial.watch = Trial.Watch.WATCHING
        trial.metadata = {**trial.metadata, "previous_champion_version_id": previous}
        trial.save(update_fields=["promoted_version", "watch", "metadata", "updated_at"])
        trial_end(
            trial,
            Trial.State.PROMOTED,
            kinds.TRIAL_PROMOTED,
            reason,
            actor=actor,
            context=context,
            extra={
                "previous_champion_version_id": previous,
                "champion_version_id": version.id,
                "rebased_on_newer_champion": rebased,
                "evaluation": evaluation or trial.evaluation,
            },
        )
        trial_record(
            trial,
            kinds.TRIAL_WATCH_STARTED,
            {
                "champion_version_id": version.id,
                "previous_champion_version_id": previous,
                "watch_tasks": trial.watch_tasks,
            },
            actor=actor,
            context=context,
        )
    return trial


def trial_prune(
    *, trial: Trial, actor: str, reason: str, context: EventDraft | None = None
) -> Trial:
    """End the trial without changing the champion."""
    with ledger_batch():
        trial_end(
            trial,
            Trial.State.PRUNED,
            kinds.TRIAL_PRUNED,
            reason,
            actor=actor,
            context=context,
            extra={"evaluation": trial.evaluation},
        )
    return trial


def trial_conclude(
    *, trial: Trial, actor: str, reason: str, context: EventDraft | None = None
) -> Trial:
    """Stop the trial's traffic; it waits ``inconclusive`` for an operator to decide."""
    with ledger_batch():
        trial_end(
            trial,
            Trial.State.INCONCLUSIVE,
            kinds.TRIAL_INCONCLUSIVE,
            reason,
            actor=actor,
            context=context,
            extra={"evaluation": trial.evaluation},
        )
    return trial


def trial_rollback(*, trial: Trial, actor: str, reason: str, raise_pain: bool = True) -> Trial:
    """Undo a promotion: the champion before it becomes the champion again (a new
    version), the trial ``rolled_back``, and a pain signal raised at its controller."""
    from workers.domain.algedonic import AlgedonicSignal, OverridePolicy, SignalSource
    from workers.services.algedonic import signal_raise

    previous = trial.metadata.get("previous_champion_version_id") or trial.base_version_id
    with ledger_batch():
        version = genome_rollback(
            to_version_id=previous, actor=actor, reason=reason, trial_id=trial.id
        )
        trial.state = Trial.State.ROLLED_BACK
        trial.watch = Trial.Watch.ROLLED_BACK
        trial.reason = reason
        trial.ended_at = trial.ended_at or timezone.now()
        trial.save(update_fields=["state", "watch", "reason", "ended_at", "updated_at"])
        archive_record_outcome(trial=trial)
        trial_record(
            trial,
            kinds.TRIAL_ROLLED_BACK,
            {
                "reason": reason,
                "rolled_back_version_id": trial.promoted_version_id,
                "restored_version_id": previous,
                "champion_version_id": version.id,
            },
            actor=actor,
        )
        if raise_pain:
            signal_raise(
                signal=AlgedonicSignal(
                    source=SignalSource.OTHER,
                    severity=6,
                    target_node_id=trial.controller_node_id,
                    related_suggestion_id=trial.id,
                    override_policy=OverridePolicy(escalate_to_root=True),
                    message=f"trial {trial.id} rolled back: {reason}",
                ),
                raised_by=actor,
            )
    return trial
