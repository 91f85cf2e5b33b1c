"""What the runtime tells the trials app, end to end: envelopes delivered in process, the
trials' own receivers connected."""

from __future__ import annotations

import pytest

from ledger import kinds
from ledger.models import LedgerEvent
from ledger.services import ledger_batch
from organization.genome import VsmChannelType
from organization.models import LiveTrial
from organization.selectors import champion_genome, genome_version
from organization.services import genome_bootstrap
from tests.support.processes import drain_in_process
from trials.models import Trial
from trials.services.candidates import suggestion_queue
from trials.services.lifecycle import trial_activate
from workers.domain.algedonic import AlgedonicSignal, OverridePolicy
from workers.domain.messages import MessageEnvelope
from workers.services.algedonic import signal_raise
from workers.services.transport import envelope_publish

pytestmark = pytest.mark.django_db

ROOT, SYSTEM, CODER = "root-codebase-system", "backend-system", "backend-coder"


def test_a_homeostat_suggestion_is_queued_as_a_trial_of_its_controller() -> None:
    genome_bootstrap(template="nested", actor="operator:test")
    patch = {"kind": "set_node_status", "node_id": CODER, "status": "Probation"}
    message = MessageEnvelope(
        channel_type=VsmChannelType.THREE_FOUR_HOMEOSTAT,
        target_node_id=SYSTEM,
        payload_type="vsm.three_four_homeostat_signal",
        payload={
            "system_3_node_id": SYSTEM,
            "system_4_node_id": SYSTEM,
            "target_node_id": CODER,
            "kind": "ResourceImbalance",
            "balance": "Conflict",
            "severity": 8,
            "suggested_patches": [patch],
        },
    )
    genome = champion_genome()
    assert genome is not None
    with ledger_batch():
        envelope_publish(envelope=message, genome=genome)
    drain_in_process()

    trial = Trial.objects.get()
    assert trial.state == Trial.State.QUEUED
    assert trial.controller_node_id == SYSTEM
    assert trial.mode == "canary" and trial.requires_approval  # a conflicted, severe signal
    candidate = genome_version(version_id=trial.candidate_version_id)
    assert candidate.nodes[CODER].status.value == "Probation"
    assert genome_version(version_id=trial.base_version_id).nodes[CODER].status.value == "Active"
    # Recorded once by the hop, queued by the trials app in the same transaction.
    created = LedgerEvent.objects.filter(kind=kinds.GENE_SUGGESTION_CREATED, suggestion_id=trial.id)
    assert created.count() == 1
    assert LedgerEvent.objects.filter(kind=kinds.TRIAL_QUEUED, trial_id=trial.id).count() == 1


def test_a_freeze_signal_freezes_the_live_trial_and_its_routing_stops(make_draft) -> None:
    genome_bootstrap(template="single", actor="operator:test")
    trial = suggestion_queue(draft=make_draft(), actor="test")
    trial_activate(actor="test")

    signal_raise(
        signal=AlgedonicSignal(
            severity=8,
            target_node_id="primary-code-service",
            override_policy=OverridePolicy(freeze_mutation=True, escalate_to_root=True),
            message="the candidate is burning tokens",
        ),
        raised_by="user:operator",
    )
    drain_in_process()

    trial.refresh_from_db()
    assert trial.state == Trial.State.FROZEN
    assert trial.reason == "algedonic freeze_mutation: the candidate is burning tokens"
    assert not LiveTrial.objects.exists()
    applied = LedgerEvent.objects.get(kind=kinds.ALGEDONIC_OVERRIDE_APPLIED)
    assert f"active_trial_frozen={trial.id}" in applied.payload["actions"]
    assert LedgerEvent.objects.filter(kind=kinds.TRIAL_FROZEN, trial_id=trial.id).count() == 1
