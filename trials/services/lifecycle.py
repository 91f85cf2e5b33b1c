"""Activating, freezing and ending trials (docs/rules/trials.md); operators' decisions are in
:mod:`.approvals`.

A live trial is two rows moved together: the trial (state ``active``) and the controller's
``organization.models.LiveTrial`` pointer the router reads. Both carry a database
constraint of one per controller, so two processes activating at once cannot both commit.
"""

from __future__ import annotations

import datetime
from typing import Any

from django.db import IntegrityError
from django.utils import timezone

from ledger import kinds
from ledger.services import EventDraft, ledger_batch
from organization.models import LiveTrial
from organization.selectors import champion_version_id
from organization.services import live_trial_close, live_trial_open
from trials.errors import TrialConflict, TrialNotFound
from trials.events import trial_record
from trials.models import Trial
from trials.services.selection import archive_record_outcome, candidate_select

APPROVE_PERMISSION = "trials.approve_trial"
# A trial with no window of its own gets this long before it is concluded.
DEFAULT_TRIAL_DAYS = 7


def trial_activate(
    *, actor: str, controller_node_id: str | None = None, trial_id: str | None = None
) -> Trial | None:
    """Make a queued trial the controller's live one: the named trial, or the best queued
    candidate by replay, objectives and the Pareto frontier (``trials.services.selection``).

    Queued trials whose base is no longer the champion are rejected first (``trial_rejected``
    with the reason). Every candidate evaluated gets an archive record, the named one too.
    Returns the activated trial, or None when nothing queued is left. Raises TrialConflict
    when the controller already runs a live trial, TrialNotFound for an unknown ``trial_id``.
    """
    try:
        with ledger_batch():
            return _activate(actor=actor, controller_node_id=controller_node_id, trial_id=trial_id)
    except IntegrityError as error:
        # Another process activated a trial at this controller first; its commit stands.
        raise TrialConflict(
            {"controller_node_id": ["this controller already runs a live trial"]}
        ) from error


def _activate(*, actor: str, controller_node_id: str | None, trial_id: str | None) -> Trial | None:
    queued = Trial.objects.select_for_update().filter(state=Trial.State.QUEUED)
    if trial_id is not None:
        if not Trial.objects.filter(pk=trial_id).exists():
            raise TrialNotFound(trial_id)
        queued = queued.filter(pk=trial_id)
        if not queued.exists():
            raise TrialConflict({"trial_id": [f"trial {trial_id} is not queued"]})
    if controller_node_id is not None:
        queued = queued.filter(controller_node_id=controller_node_id)
    champion_id = champion_version_id()
    busy = set(LiveTrial.objects.values_list("controller_node_id", flat=True))
    # Stale candidates are rejected first, whichever controller they wait at.
    controllers: dict[str, None] = {}
    for trial in queued.select_related("suggestion").order_by("queued_at", "pk"):
        if trial.base_version_id != champion_id:
            trial_end(
                trial,
                Trial.State.REJECTED,
                kinds.TRIAL_REJECTED,
                f"base genome superseded by current champion {champion_id}",
                actor=actor,
            )
            continue
        controllers.setdefault(trial.controller_node_id)
    # Then, at the controllers in the order of their oldest candidate, the best candidate.
    for controller in controllers:
        if controller in busy:
            if trial_id is not None or controller_node_id is not None:
                raise TrialConflict(
                    {
                        "controller_node_id": [
                            f"{controller} already runs a live trial; "
                            "it must end before another starts"
                        ]
                    }
                )
            continue
        assert champion_id is not None  # a fresh candidate's base is the champion
        chosen = candidate_select(
            controller_node_id=controller,
            champion_version_id=champion_id,
            named_trial_id=trial_id,
        )
        if chosen is None:
            continue
        _start(chosen.trial, actor=actor, selection=chosen.started_payload())
        return chosen.trial
    return None


def _start(trial: Trial, *, actor: str, selection: dict[str, Any]) -> None:
    now = timezone.now()
    plan = trial.suggestion.measurement_plan or {}
    days = plan.get("window_days") or DEFAULT_TRIAL_DAYS
    trial.state = Trial.State.ACTIVE
    trial.started_at = now
    trial.deadline = trial.deadline or now + datetime.timedelta(days=int(days))
    trial.save(update_fields=["state", "started_at", "deadline", "updated_at"])
    live_trial_open(
        controller_node_id=trial.controller_node_id,
        trial_id=trial.id,
        candidate_version_id=trial.candidate_version_id,
        base_version_id=trial.base_version_id,
        mode=trial.mode,
        traffic_share_basis_points=trial.traffic_share_basis_points,
        requires_approval=trial.requires_approval,
        max_tasks=trial.max_tasks,
        max_token_budget=trial.max_token_budget,
        max_files_touched=trial.max_files_touched,
        allowed_task_classes=trial.allowed_task_classes,
    )
    trial_record(
        trial,
        kinds.TRIAL_STARTED,
        {
            "controller_node_id": trial.controller_node_id,
            "base_genome_id": trial.base_version_id,
            "candidate_genome_id": trial.candidate_version_id,
            "trial_mode": trial.mode,
            "requires_approval": trial.requires_approval,
            "traffic_share_basis_points": trial.traffic_share_basis_points,
            "max_tasks": trial.max_tasks,
            "max_token_budget": trial.max_token_budget,
            "deadline": trial.deadline.isoformat(),
            **selection,
            "decision_settings": decision_settings_json(trial),
        },
        actor=actor,
    )


def decision_settings_json(trial: Trial) -> dict[str, Any]:
    """The decision rule's settings as pre-registered on the trial."""
    return {
        "alpha": trial.alpha,
        "indifference_margin": trial.indifference_margin,
        "min_traces_per_arm": trial.min_traces_per_arm,
        "max_traces_per_arm": trial.max_traces_per_arm,
        "token_margin": trial.token_margin,
        "latency_margin": trial.latency_margin,
    }


def trial_end(
    trial: Trial,
    state: str,
    kind: str,
    reason: str,
    *,
    actor: str,
    context: EventDraft | None = None,
    extra: dict[str, Any] | None = None,
) -> None:
    """Move ``trial`` to a final (or operator-waiting) state, close its routing, record it,
    and write the outcome and realised score on its archive records."""
    closed = live_trial_close(trial_id=trial.id)
    if closed is not None:
        trial.routed_tasks = closed.routed_tasks
        trial.consumed_tokens = closed.consumed_tokens
    trial.state = state
    trial.reason = reason
    trial.ended_at = timezone.now()
    trial.save(
        update_fields=[
            "state",
            "reason",
            "ended_at",
            "routed_tasks",
            "consumed_tokens",
            "updated_at",
        ]
    )
    archive_record_outcome(trial=trial)
    trial_record(
        trial,
        kind,
        {
            "reason": reason,
            "state": state,
            "routed_tasks": trial.routed_tasks,
            "consumed_tokens": trial.consumed_tokens,
            **(extra or {}),
        },
        actor=actor,
        context=context,
    )


def trial_freeze(
    *, trial_id: str, reason: str, actor: str, event_context: EventDraft | None = None
) -> list[str]:
    """An algedonic freeze: an active trial becomes frozen (its routing closed), a queued one
    rejected; returns the action strings applied (docs/rules/trials.md, "Freezing").

    Idempotent: a trial already ended is left alone, with an action that says so.
    """
    with ledger_batch():
        trial = Trial.objects.select_for_update().filter(pk=trial_id).first()
        if trial is None:
            return [f"freeze_mutation_no_trial_record={trial_id}"]
        full_reason = f"algedonic freeze_mutation: {reason}"
        if trial.state == Trial.State.ACTIVE:
            trial_end(
                trial,
                Trial.State.FROZEN,
                kinds.TRIAL_FROZEN,
                full_reason,
                actor=actor,
                context=event_context,
            )
            return [f"active_trial_frozen={trial.id}"]
        if trial.state == Trial.State.QUEUED:
            trial_end(
                trial,
                Trial.State.REJECTED,
                kinds.TRIAL_REJECTED,
                full_reason,
                actor=actor,
                context=event_context,
            )
            return [f"queued_trial_rejected={trial.id}"]
        return [f"freeze_mutation_recorded_for_nonqueued_trial={trial.id}"]


def on_freeze_requested(
    sender: str,
    *,
    controller_node_id: str,
    suggestion_id: str | None,
    message: str,
    event_context: EventDraft | None = None,
    **kwargs: Any,
) -> list[str]:
    """``workers.signals.mutation_freeze_requested``: freeze the named or the live trial."""
    actor = event_context.actor if event_context else f"node:{controller_node_id}"
    target = suggestion_id
    actions: list[str] = []
    if target is None:
        live = LiveTrial.objects.filter(controller_node_id=controller_node_id).first()
        if live is None:
            return ["freeze_mutation_no_related_suggestion"]
        target = live.trial_id
        actions.append("freeze_mutation_no_related_suggestion_active_trial")
    return [
        *actions,
        *trial_freeze(trial_id=target, reason=message, actor=actor, event_context=event_context),
    ]
