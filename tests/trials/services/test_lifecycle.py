"""Activation, the one-live-trial constraint, freezing, approval and rejection."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from ledger import kinds
from ledger.models import LedgerEvent
from organization.models import LiveTrial
from organization.services import genome_apply_patch
from tests.factories import approver, viewer
from trials.errors import ApprovalDenied, TrialConflict
from trials.models import Trial, TrialApproval
from trials.selectors import evidence_hash, trial_evidence_bundle
from trials.services.approvals import trial_approve, trial_reject
from trials.services.candidates import suggestion_queue
from trials.services.lifecycle import on_freeze_requested, trial_activate, trial_freeze
from workers.domain.homeostat import TrialMode
from workers.errors import IdempotencyConflict, Rejected

pytestmark = pytest.mark.django_db


def test_activation_starts_the_oldest_queued_trial_and_opens_its_route(champion, make_draft):
    first = suggestion_queue(draft=make_draft(name="reviewer-a"), actor="test")
    suggestion_queue(draft=make_draft(name="reviewer-b"), actor="test")

    started = trial_activate(actor="test")

    assert started is not None and started.id == first.id
    first.refresh_from_db()
    assert first.state == Trial.State.ACTIVE and first.deadline is not None
    live = LiveTrial.objects.get(controller_node_id="root-codebase-system")
    assert (live.trial_id, live.candidate_version_id) == (first.id, first.candidate_version_id)
    assert LedgerEvent.objects.filter(kind=kinds.TRIAL_STARTED, trial_id=first.id).count() == 1


def test_a_controller_with_a_live_trial_refuses_another(champion, make_draft):
    suggestion_queue(draft=make_draft(name="reviewer-a"), actor="test")
    second = suggestion_queue(draft=make_draft(name="reviewer-b"), actor="test")
    trial_activate(actor="test")

    with pytest.raises(TrialConflict):
        trial_activate(actor="test", trial_id=second.id)
    # Without naming one, there is simply nothing to start.
    assert trial_activate(actor="test") is None
    second.refresh_from_db()
    assert second.state == Trial.State.QUEUED


def test_the_database_itself_allows_one_active_trial_per_controller(champion, make_draft):
    first = suggestion_queue(draft=make_draft(name="reviewer-a"), actor="test")
    second = suggestion_queue(draft=make_draft(name="reviewer-b"), actor="test")
    trial_activate(actor="test", trial_id=first.id)

    with pytest.raises(IntegrityError), transaction.atomic():
        Trial.objects.filter(pk=second.pk).update(state=Trial.State.ACTIVE)
    with pytest.raises(IntegrityError), transaction.atomic():
        LiveTrial.objects.create(
            controller_node_id="root-codebase-system",
            trial_id=second.id,
            candidate_version_id=second.candidate_version_id,
            base_version_id=second.base_version_id,
            mode="canary",
        )


def test_a_candidate_whose_base_is_no_longer_champion_is_rejected_at_activation(
    champion, make_draft
):
    stale = suggestion_queue(draft=make_draft(), actor="test")
    genome_apply_patch(
        patch={"kind": "set_node_status", "node_id": "primary-code-service", "status": "Probation"},
        actor="operator",
    )

    assert trial_activate(actor="test") is None

    stale.refresh_from_db()
    assert stale.state == Trial.State.REJECTED
    assert "base genome superseded by current champion" in stale.reason
    event = LedgerEvent.objects.get(kind=kinds.TRIAL_REJECTED, trial_id=stale.id)
    assert "superseded" in event.payload["reason"]
    assert not LiveTrial.objects.exists()


def test_freezing_an_active_trial_closes_its_route(champion, make_draft):
    trial = suggestion_queue(draft=make_draft(), actor="test")
    trial_activate(actor="test")

    actions = trial_freeze(trial_id=trial.id, reason="pain in the subtree", actor="node:root")

    trial.refresh_from_db()
    assert actions == [f"active_trial_frozen={trial.id}"]
    assert trial.state == Trial.State.FROZEN
    assert trial.reason == "algedonic freeze_mutation: pain in the subtree"
    assert not LiveTrial.objects.exists()
    assert LedgerEvent.objects.filter(kind=kinds.TRIAL_FROZEN, trial_id=trial.id).exists()
    # Frozen blocks nothing: the slot is free for the next queued trial.
    assert trial_freeze(trial_id=trial.id, reason="again", actor="x") == [
        f"freeze_mutation_recorded_for_nonqueued_trial={trial.id}"
    ]


def test_freezing_a_queued_trial_rejects_it(champion, make_draft):
    trial = suggestion_queue(draft=make_draft(), actor="test")
    assert trial_freeze(trial_id=trial.id, reason="stop", actor="x") == [
        f"queued_trial_rejected={trial.id}"
    ]
    trial.refresh_from_db()
    assert trial.state == Trial.State.REJECTED


def test_a_freeze_with_no_suggestion_freezes_the_controllers_live_trial(champion, make_draft):
    trial = suggestion_queue(draft=make_draft(), actor="test")
    trial_activate(actor="test")

    actions = on_freeze_requested(
        "root-codebase-system",
        controller_node_id="root-codebase-system",
        suggestion_id=None,
        message="cost spike",
    )

    assert actions == [
        "freeze_mutation_no_related_suggestion_active_trial",
        f"active_trial_frozen={trial.id}",
    ]
    assert on_freeze_requested(
        "root-codebase-system",
        controller_node_id="root-codebase-system",
        suggestion_id=None,
        message="again",
    ) == ["freeze_mutation_no_related_suggestion"]


def test_an_active_trial_survives_in_the_database_and_blocks_activation(champion, make_draft):
    """Nothing lives in memory: a fresh process sees the live trial and respects it."""
    first = suggestion_queue(draft=make_draft(name="reviewer-a"), actor="test")
    second = suggestion_queue(draft=make_draft(name="reviewer-b"), actor="test")
    trial_activate(actor="test")
    from organization import selectors

    selectors._version_cache.clear()  # what a restarted process starts with

    with pytest.raises(TrialConflict):
        trial_activate(actor="test", trial_id=second.id)
    assert Trial.objects.get(pk=first.pk).state == Trial.State.ACTIVE


# -- approvals --------------------------------------------------------------------------


@pytest.fixture
def probation(champion, make_draft):
    trial = suggestion_queue(
        draft=make_draft(mode=TrialMode.PROBATION, requires_approval=True, share=None),
        actor="test",
    )
    trial_activate(actor="test")
    trial.refresh_from_db()
    return trial


def test_an_operator_approves_a_probation_trial_and_its_traffic_may_flow(probation):
    assert probation.awaiting_operator

    seen = evidence_hash(trial_evidence_bundle(trial=probation))
    approval = trial_approve(
        trial_id=probation.id, user=approver(), evidence_hash=seen, reason="looks safe"
    )

    probation.refresh_from_db()
    assert probation.approved_at is not None and not probation.awaiting_operator
    live = LiveTrial.objects.get(trial_id=probation.id)
    assert live.approved
    # It had no share: approved, it gets half the traffic (per task, by its bucket).
    assert probation.traffic_share_basis_points == live.traffic_share_basis_points == 5000
    assert approval.evidence_hash == seen
    event = LedgerEvent.objects.get(kind=kinds.TRIAL_APPROVAL_RECORDED, trial_id=probation.id)
    assert event.actor == "user:approver"
    assert event.payload["verdict"] == "approve"


def test_an_approval_of_evidence_that_has_changed_since_is_refused(probation):
    with pytest.raises(TrialConflict) as conflict:
        trial_approve(trial_id=probation.id, user=approver(), evidence_hash="sha256:stale")
    assert "evidence_hash" in conflict.value.errors
    probation.refresh_from_db()
    assert probation.approved_at is None


def test_a_viewer_may_not_approve(probation):
    with pytest.raises(ApprovalDenied):
        trial_approve(trial_id=probation.id, user=viewer())
    probation.refresh_from_db()
    assert probation.approved_at is None
    assert not TrialApproval.objects.exists()


def test_approving_twice_conflicts_but_the_same_key_replays(probation):
    user = approver()
    first = trial_approve(trial_id=probation.id, user=user, idempotency_key="k-1")
    assert trial_approve(trial_id=probation.id, user=user, idempotency_key="k-1") == first
    with pytest.raises(TrialConflict):
        trial_approve(trial_id=probation.id, user=user, idempotency_key="k-2")
    with pytest.raises(IdempotencyConflict):
        trial_reject(trial_id=probation.id, user=user, reason="no", idempotency_key="k-1")


def test_a_rejection_needs_a_reason_and_ends_the_trial(probation):
    with pytest.raises(Rejected):
        trial_reject(trial_id=probation.id, user=approver(), reason="  ")
    trial_reject(trial_id=probation.id, user=approver(), reason="too risky this week")
    probation.refresh_from_db()
    assert probation.state == Trial.State.REJECTED
    assert "too risky" in probation.reason
    assert not LiveTrial.objects.exists()
