"""Queueing a suggestion builds its candidate genome and never touches the champion."""

from __future__ import annotations

import pytest

from ledger import kinds
from ledger.models import LedgerEvent
from organization.models import GenomeVersion, Node
from organization.selectors import champion_version_id, genome_version
from trials.errors import SuggestionRefused
from trials.models import GeneSuggestion, Trial
from trials.services.candidates import suggestion_queue

pytestmark = pytest.mark.django_db


def test_it_queues_a_trial_with_a_candidate_genome_and_leaves_the_champion(champion, make_draft):
    trial = suggestion_queue(draft=make_draft(max_tasks=10), actor="test")

    assert trial.state == Trial.State.QUEUED
    assert trial.controller_node_id == "root-codebase-system"
    assert trial.base_version_id == champion.id
    candidate = genome_version(version_id=trial.candidate_version_id)
    assert "review-probation-leaf" in candidate.nodes
    assert candidate.metadata["candidate_base_genome_id"] == champion.id
    # The champion, its pointer and its Node rows are untouched.
    assert champion_version_id() == champion.id
    assert not Node.objects.filter(id="review-probation-leaf").exists()
    assert "review-probation-leaf" not in genome_version(version_id=champion.id).nodes
    # Limits copied; a 10-task trial is judged on at most 10 traces.
    assert (trial.max_tasks, trial.max_traces_per_arm, trial.min_traces_per_arm) == (10, 10, 10)
    assert trial.traffic_share_basis_points == 10_000
    kinds_recorded = list(
        LedgerEvent.objects.filter(trial_id=trial.id).values_list("kind", flat=True)
    )
    assert kinds_recorded == [kinds.GENE_SUGGESTION_CREATED, kinds.TRIAL_QUEUED]


def test_it_refuses_a_patch_that_does_not_apply_and_stores_nothing(champion, make_draft):
    draft = make_draft()
    draft.patch = {**draft.patch, "parent_id": "no-such-node"}
    events_before = LedgerEvent.objects.count()
    versions_before = GenomeVersion.objects.count()

    with pytest.raises(SuggestionRefused) as refused:
        suggestion_queue(draft=draft, actor="test")

    assert "patch" in refused.value.errors
    assert GeneSuggestion.objects.count() == 0
    assert Trial.objects.count() == 0
    assert GenomeVersion.objects.count() == versions_before
    assert LedgerEvent.objects.count() == events_before


def test_it_refuses_an_unknown_target(champion, make_draft):
    with pytest.raises(SuggestionRefused) as refused:
        suggestion_queue(draft=make_draft(target_node_id="ghost"), actor="test")
    assert "target_node_id" in refused.value.errors


def test_a_suggestion_about_a_leaf_is_its_parents_trial(champion, make_draft):
    trial = suggestion_queue(draft=make_draft(target_node_id="primary-code-service"), actor="t")
    assert trial.controller_node_id == "root-codebase-system"


def test_any_number_may_be_queued(champion, make_draft):
    first = suggestion_queue(draft=make_draft(name="reviewer-a"), actor="test")
    second = suggestion_queue(draft=make_draft(name="reviewer-b"), actor="test")
    assert {first.state, second.state} == {Trial.State.QUEUED}
    assert first.candidate_version_id != second.candidate_version_id
