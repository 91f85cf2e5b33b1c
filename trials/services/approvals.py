"""Operators' decisions on trials: approve or reject, with the evidence they saw
(docs/rules/trials.md, "Approvals")."""

from __future__ import annotations

from django.contrib.auth.models import User

from ledger import kinds
from ledger.services import ledger_batch
from organization.services import live_trial_approve
from trials.errors import ApprovalDenied, TrialConflict, TrialNotFound
from trials.events import trial_record
from trials.models import Trial, TrialApproval, TrialMode
from trials.services.lifecycle import trial_end
from workers.errors import IdempotencyConflict, Rejected

APPROVE_PERMISSION = "trials.approve_trial"
APPROVED_PROBATION_SHARE_BASIS_POINTS = 5000


def _check_permission(user: User) -> str:
    name = user.get_username()
    if not user.is_active or not user.has_perm(APPROVE_PERMISSION):
        raise ApprovalDenied(name)
    return name


def _replayed(idempotency_key: str | None, *, trial_id: str, verdict: str) -> TrialApproval | None:
    if not idempotency_key:
        return None
    first = TrialApproval.objects.filter(idempotency_key=idempotency_key).first()
    if first is None:
        return None
    if first.trial_id != trial_id or first.verdict != verdict:
        raise IdempotencyConflict()
    return first


def _pending(trial_id: str) -> Trial:
    trial = Trial.objects.select_for_update().filter(pk=trial_id).first()
    if trial is None:
        raise TrialNotFound(trial_id)
    if not trial.awaiting_operator:
        raise TrialConflict(
            {"state": [f"trial {trial_id} is {trial.state} and waits for no operator"]}
        )
    return trial


def trial_approve(
    *,
    trial_id: str,
    user: User,
    reason: str = "",
    evidence_hash: str = "",
    idempotency_key: str | None = None,
) -> TrialApproval:
    """An operator approves a pending trial: a probation trial's traffic flows, an
    inconclusive trial is promoted (an override of the rule, so it needs a reason).

    Raises ApprovalDenied without ``trials.approve_trial``, TrialNotFound, TrialConflict when
    the trial is not pending or when ``evidence_hash`` (the bundle the operator read) no
    longer matches the evidence, Rejected when a needed reason is missing. A repeated
    ``idempotency_key`` returns the first approval.
    """
    name = _check_permission(user)
    replay = _replayed(idempotency_key, trial_id=trial_id, verdict=TrialApproval.Verdict.APPROVE)
    if replay is not None:
        return replay
    from trials.services.promotion import trial_promote

    with ledger_batch():
        trial = _pending(trial_id)
        overrides = trial.state == Trial.State.INCONCLUSIVE
        if overrides and not reason.strip():
            raise Rejected(
                {"reason": ["promoting an inconclusive trial overrides the rule: say why"]}
            )
        approval = _approval(
            trial, user, name, "approve", reason, evidence_hash, idempotency_key, overrides
        )
        _record_approval(trial, approval)
        if overrides:
            trial_promote(trial=trial, actor=f"user:{name}", reason=f"operator override: {reason}")
        else:
            trial.approved_at = approval.decided_at
            fields = ["approved_at", "updated_at"]
            if trial.mode == TrialMode.PROBATION and trial.traffic_share_basis_points is None:
                # A probation trial without a share would run only tasks approved one by one;
                # the operator approved the trial, so it gets half the traffic: the split that
                # decides soonest, each arm as large as the other.
                trial.traffic_share_basis_points = APPROVED_PROBATION_SHARE_BASIS_POINTS
                fields.append("traffic_share_basis_points")
            trial.save(update_fields=fields)
            live_trial_approve(
                trial_id=trial.id, traffic_share_basis_points=trial.traffic_share_basis_points
            )
    return approval


def trial_reject(
    *,
    trial_id: str,
    user: User,
    reason: str,
    evidence_hash: str = "",
    idempotency_key: str | None = None,
) -> TrialApproval:
    """An operator rejects a pending trial (a reason is required): it ends ``rejected``
    (a live one's routing closed, the champion untouched). Errors as ``trial_approve``."""
    name = _check_permission(user)
    if not reason.strip():
        raise Rejected({"reason": ["say why the trial is rejected"]})
    replay = _replayed(idempotency_key, trial_id=trial_id, verdict=TrialApproval.Verdict.REJECT)
    if replay is not None:
        return replay
    with ledger_batch():
        trial = _pending(trial_id)
        approval = _approval(
            trial,
            user,
            name,
            "reject",
            reason,
            evidence_hash,
            idempotency_key,
            overrides=trial.verdict == "promote",
        )
        _record_approval(trial, approval)
        trial_end(
            trial,
            Trial.State.REJECTED,
            kinds.TRIAL_REJECTED,
            f"rejected by {name}: {reason}",
            actor=f"user:{name}",
        )
    return approval


def _approval(
    trial: Trial,
    user: User,
    name: str,
    verdict: str,
    reason: str,
    evidence_hash: str,
    idempotency_key: str | None,
    overrides: bool,
) -> TrialApproval:
    from trials.selectors import evidence_hash as hash_of
    from trials.selectors import trial_evidence_bundle

    current = hash_of(trial_evidence_bundle(trial=trial))
    if evidence_hash and evidence_hash != current:
        # The operator decided on evidence that has changed since (new traces, a decision):
        # they must look again rather than approve what they did not see.
        raise TrialConflict(
            {"evidence_hash": ["the evidence changed since you read it; reload and decide again"]}
        )
    evidence_hash = current
    return TrialApproval.objects.create(
        trial=trial,
        verdict=verdict,
        actor=user,
        actor_name=name,
        reason=reason,
        evidence_hash=evidence_hash,
        idempotency_key=idempotency_key or None,
        overrides_rule=overrides,
    )


def _record_approval(trial: Trial, approval: TrialApproval) -> None:
    trial_record(
        trial,
        kinds.TRIAL_APPROVAL_RECORDED,
        {
            "verdict": approval.verdict,
            "actor": approval.actor_name,
            "reason": approval.reason,
            "evidence_hash": approval.evidence_hash,
            "overrides_rule": approval.overrides_rule,
            "state_before": trial.state,
        },
        actor=f"user:{approval.actor_name}",
    )
