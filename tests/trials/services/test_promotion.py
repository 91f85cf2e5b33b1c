"""Promotion through the genome service, and rolling a promotion back."""

from __future__ import annotations

import pytest

from ledger import kinds
from ledger.models import LedgerEvent
from organization.models import LiveTrial, Node
from organization.selectors import champion_version_id, genome_version
from organization.services import genome_apply_patch
from trials.models import Trial
from trials.services.candidates import suggestion_queue
from trials.services.lifecycle import trial_activate
from trials.services.promotion import trial_promote, trial_prune, trial_rollback
from workers.models import AlgedonicSignalRecord

pytestmark = pytest.mark.django_db


@pytest.fixture
def active(champion, make_draft):
    trial = suggestion_queue(draft=make_draft(), actor="test")
    trial_activate(actor="test")
    trial.refresh_from_db()
    return trial


def test_promotion_makes_the_candidates_genome_the_champion(champion, active):
    trial_promote(trial=active, actor="system:trials", reason="significantly better")

    active.refresh_from_db()
    assert active.state == Trial.State.PROMOTED
    assert active.watch == Trial.Watch.WATCHING
    new_champion = champion_version_id()
    assert new_champion == active.promoted_version_id != champion.id
    promoted = genome_version(version_id=str(new_champion))
    candidate = genome_version(version_id=active.candidate_version_id)
    assert set(promoted.nodes) == set(candidate.nodes)
    assert "candidate_base_genome_id" not in promoted.metadata  # a champion, not a candidate
    assert Node.objects.filter(id="review-probation-leaf").exists()
    assert not LiveTrial.objects.exists()
    applied = LedgerEvent.objects.get(kind=kinds.GENOME_PATCH_APPLIED, trial_id=active.id)
    assert applied.payload["trial_id"] == active.id
    promoted_events = LedgerEvent.objects.filter(trial_id=active.id, kind=kinds.TRIAL_PROMOTED)
    assert promoted_events.get().payload["rebased_on_newer_champion"] is False


def test_a_promotion_after_another_change_applies_the_patch_on_the_newer_champion(champion, active):
    genome_apply_patch(
        patch={"kind": "set_node_status", "node_id": "primary-code-service", "status": "Probation"},
        actor="operator",
    )
    trial_promote(trial=active, actor="system:trials", reason="better")
    genome = genome_version(version_id=str(champion_version_id()))
    assert "review-probation-leaf" in genome.nodes
    assert genome.nodes["primary-code-service"].status.value == "Probation"  # kept, not undone


def test_a_patch_that_no_longer_applies_leaves_the_trial_for_an_operator(champion, active):
    # The same reviewer lands by another route first: the patch now collides.
    genome_apply_patch(
        patch=active.suggestion.patch,
        actor="operator",
    )
    before = champion_version_id()
    trial_promote(trial=active, actor="system:trials", reason="better")
    active.refresh_from_db()
    assert active.state == Trial.State.INCONCLUSIVE and active.awaiting_operator
    assert "no longer applies" in active.reason
    assert champion_version_id() == before


def test_pruning_leaves_the_champion(champion, active):
    trial_prune(trial=active, actor="system:trials", reason="worse")
    active.refresh_from_db()
    assert active.state == Trial.State.PRUNED
    assert champion_version_id() == champion.id
    assert not LiveTrial.objects.exists()


def test_a_rollback_restores_the_champion_before_the_promotion_and_raises_pain(champion, active):
    trial_promote(trial=active, actor="system:trials", reason="better")

    trial_rollback(trial=active, actor="system:trials", reason="regressed")

    active.refresh_from_db()
    assert active.state == Trial.State.ROLLED_BACK
    restored = genome_version(version_id=str(champion_version_id()))
    assert "review-probation-leaf" not in restored.nodes
    assert not Node.objects.filter(id="review-probation-leaf").exists()
    assert LedgerEvent.objects.filter(kind=kinds.GENOME_ROLLED_BACK, trial_id=active.id).exists()
    pain = AlgedonicSignalRecord.objects.get(related_suggestion_id=active.id)
    assert pain.valence == "Pain" and "rolled back" in pain.message
    # History learns the real ending, not the promotion.
    assert set(active.archive_records.values_list("outcome", flat=True)) == {"rolled_back"}
