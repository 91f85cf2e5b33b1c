"""An audit report on the Audit channel: recorded, handed to the trials, queued or refused."""

from __future__ import annotations

from typing import Any

import pytest

from ledger import kinds
from ledger.models import LedgerEvent
from ledger.services import ledger_batch
from organization.genome import (
    AddChild,
    LeafOperationSpec,
    ViableNode,
    VsmChannelType,
    patch_to_json,
)
from organization.selectors import champion_genome, champion_version_id, genome_version
from organization.services import genome_bootstrap
from tests.support.processes import drain_in_process
from trials.models import AuditRun, GeneSuggestion, Trial
from workers.domain.messages import MessageEnvelope, PayloadType
from workers.models import Envelope
from workers.services.transport import envelope_publish

pytestmark = pytest.mark.django_db

ROOT, SYSTEM, CODER = "root-codebase-system", "backend-system", "backend-coder"


@pytest.fixture(autouse=True)
def nested() -> None:
    genome_bootstrap(template="nested", actor="operator:test")


def deliver_report(report: Any, *, to: str = SYSTEM, source: str = ROOT) -> str:
    """Publish ``report`` to ``to`` on the Audit channel and run every hop it causes."""
    genome = champion_genome()
    assert genome is not None
    message = MessageEnvelope(
        channel_type=VsmChannelType.AUDIT,
        source_node_id=source,
        target_node_id=to,
        correlation_id="audit-42",
        payload_type=PayloadType.AUDIT_REPORT,
        payload=report,
    )
    with ledger_batch():
        envelope_publish(envelope=message, genome=genome)
    drain_in_process()
    return message.id


def reviewer_patch(parent: str = SYSTEM) -> dict[str, Any]:
    leaf = ViableNode.leaf("second-opinion", LeafOperationSpec.reviewer(), id="second-opinion")
    return patch_to_json(AddChild(parent_id=parent, child=leaf))


def events_of(kind: str) -> list[LedgerEvent]:
    return list(LedgerEvent.objects.filter(kind=kind).order_by("seq"))


REPORT = {
    "target_node_id": SYSTEM,
    "findings": [
        {
            "title": "Flaky tests",
            "severity": 5,
            "evidence": ["3 reruns in a day"],
            "related_nodes": [CODER],
            "related_tasks": ["t-1"],
        }
    ],
    "suggested_patches": [reviewer_patch()],
}


def test_a_report_queues_a_trial_for_each_suggested_patch() -> None:
    envelope_id = deliver_report(REPORT)

    [received] = events_of(kinds.AUDIT_REPORT_RECEIVED)
    assert received.node_id == SYSTEM
    assert (received.payload["finding_count"], received.payload["suggested_patch_count"]) == (1, 1)
    [trial] = Trial.objects.all()
    suggestion = trial.suggestion
    assert (suggestion.suggested_by_node_id, suggestion.target_node_id) == (ROOT, SYSTEM)
    assert suggestion.source == GeneSuggestion.Source.SYSTEM3_STAR_AUDIT
    assert suggestion.hypothesis == (
        "System 3* audit report suggests a bounded organizational mutation: Flaky tests"
    )
    assert suggestion.evidence == [
        "source_channel=Audit",
        "correlation_id=audit-42",
        "finding=Flaky tests severity=5 related_nodes=1 related_tasks=1",
        "3 reruns in a day",
    ]
    assert (trial.state, trial.controller_node_id, trial.requires_approval) == (
        "queued",
        SYSTEM,
        True,
    )
    assert "second-opinion" in genome_version(version_id=trial.candidate_version_id).nodes
    assert "second-opinion" not in genome_version(version_id=champion_version_id() or "").nodes
    run = suggestion.audit_run
    assert run is not None and run.trigger == AuditRun.Trigger.AUDIT_CHANNEL
    assert run.findings[0]["title"] == "Flaky tests"
    [completed] = events_of(kinds.AUDIT_COMPLETED)
    assert completed.payload["metadata"] == {"source_channel": "Audit", "suggestion_count": "1"}
    assert completed.payload["suggestion_ids"] == [trial.id]
    assert completed.causation_id == envelope_id
    caused = LedgerEvent.objects.filter(causation_id=envelope_id).order_by("seq")
    assert [event.kind for event in caused] == [
        kinds.AUDIT_REPORT_RECEIVED,
        kinds.GENE_SUGGESTION_CREATED,
        kinds.TRIAL_QUEUED,
        kinds.AUDIT_COMPLETED,
    ]


@pytest.mark.parametrize(
    ("report", "reason"),
    [
        ({"findings": "everything is on fire"}, "target_node_id"),
        ({**REPORT, "suggested_patches": [{"kind": "grow_wings"}]}, "suggested_patches[0].kind"),
        ({**REPORT, "target_node_id": "nowhere"}, "not a node of the genome"),
        ({**REPORT, "target_node_id": ROOT}, "outside the subtree of 'backend-system'"),
    ],
    ids=["no target", "not a patch", "unknown target", "outside the subtree"],
)
def test_a_malformed_report_is_recorded_as_rejected_and_the_hop_commits(
    report: dict[str, Any], reason: str
) -> None:
    envelope_id = deliver_report(report)

    assert Envelope.objects.get(id=envelope_id).handled_at is not None
    [rejected] = events_of(kinds.AUDIT_REPORT_REJECTED)
    assert reason in rejected.payload["reason"]
    assert rejected.causation_id == envelope_id
    assert len(events_of(kinds.AUDIT_REPORT_RECEIVED)) == 1
    assert Trial.objects.count() == 0
    assert events_of(kinds.AUDIT_COMPLETED) == []


def test_a_suggested_patch_that_does_not_apply_is_refused_in_the_completion() -> None:
    report = {
        **REPORT,
        "suggested_patches": [{**reviewer_patch(), "parent_id": "ghost"}, reviewer_patch()],
    }

    envelope_id = deliver_report(report)

    assert Envelope.objects.get(id=envelope_id).handled_at is not None
    [trial] = Trial.objects.all()
    [completed] = events_of(kinds.AUDIT_COMPLETED)
    assert completed.payload["suggestion_ids"] == [trial.id]
    [refused] = completed.payload["refused"]
    assert "ghost" in refused["reason"]
