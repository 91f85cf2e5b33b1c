"""What a controller does with each channel's message, end to end in this process."""

from __future__ import annotations

from typing import Any

import pytest

from ledger import kinds
from ledger.models import LedgerEvent, TaskTrace
from ledger.services import ledger_batch
from organization.genome import VsmChannelType
from organization.selectors import champion_genome
from organization.services import genome_bootstrap
from tests.support.processes import drain_in_process
from workers.domain.messages import MessageEnvelope
from workers.models import Envelope, ResourceGrant
from workers.services.transport import envelope_publish

pytestmark = pytest.mark.django_db

ROOT, SYSTEM, CODER = "root-codebase-system", "backend-system", "backend-coder"


def send(target: str, payload_type: str, payload: dict[str, Any], **envelope: Any) -> str:
    """Publish a message to ``target`` under the champion, as another node would."""
    genome = champion_genome()
    assert genome is not None
    message = MessageEnvelope(
        target_node_id=target, payload_type=payload_type, payload=payload, **envelope
    )
    with ledger_batch():
        envelope_publish(envelope=message, genome=genome)
    return message.id


def events_of(kind: str) -> list[LedgerEvent]:
    return list(LedgerEvent.objects.filter(kind=kind).order_by("seq"))


@pytest.fixture(autouse=True)
def nested() -> None:
    genome_bootstrap(template="nested", actor="operator:test")


def test_a_severe_contention_signal_becomes_a_dampening_task_on_system2_coordination() -> None:
    send(
        SYSTEM,
        "vsm.system2_coordination_signal",
        {
            "coordinator_node_id": SYSTEM,
            "target_node_id": CODER,
            "kind": "Contention",
            "summary": "two tasks edit the same file",
            "severity": 6,
        },
        channel_type=VsmChannelType.SYSTEM2_COORDINATION,
        source_node_id=CODER,
    )
    drain_in_process()

    [signal] = events_of(kinds.SYSTEM2_COORDINATION_SIGNAL)
    assert signal.payload["kind"] == "Contention"
    [created] = events_of(kinds.SYSTEM2_DAMPENING_TASK_CREATED)
    dampening = Envelope.objects.get(target_node_id=CODER, payload_type="vsm.task_packet")
    assert dampening.payload["title"] == "Dampen System 2 Contention"
    assert (dampening.channel_type, dampening.priority) == ("System2Coordination", "High")
    assert dampening.metadata["coordination_kind"] == "Contention"
    trace = TaskTrace.objects.get(task_id=dampening.payload["id"])
    assert trace.metadata["coordination_policy"] == "system2_dampening_v1"
    assert created.task_id == dampening.payload["id"]


def test_a_mild_coordination_signal_is_only_recorded() -> None:
    send(
        SYSTEM,
        "vsm.system2_coordination_signal",
        {"coordinator_node_id": SYSTEM, "kind": "Contention", "severity": 4},
        channel_type=VsmChannelType.SYSTEM2_COORDINATION,
    )
    drain_in_process()

    assert len(events_of(kinds.SYSTEM2_COORDINATION_SIGNAL)) == 1
    assert not Envelope.objects.filter(payload_type="vsm.task_packet").exists()


def test_a_review_request_handoff_reaches_its_target_with_the_artifact() -> None:
    send(
        SYSTEM,
        "vsm.operation_handoff",
        {
            "source_node_id": CODER,
            "target_node_id": CODER,
            "kind": "ReviewRequest",
            "title": "Review the patch",
            "summary": "please look",
            "artifacts": [{"kind": "diff", "uri": "artifact://patch-1"}],
        },
        channel_type=VsmChannelType.OPERATION_TO_OPERATION,
        source_node_id=CODER,
    )
    drain_in_process()

    assert len(events_of(kinds.OPERATION_HANDOFF_RECEIVED)) == 1
    task = Envelope.objects.get(target_node_id=CODER, payload_type="vsm.task_packet")
    assert task.channel_type == "OperationToOperation"
    assert "artifact://patch-1" in task.payload["context_refs"]
    assert task.metadata["handoff_kind"] == "operation_to_operation"
    assert task.metadata["handoff_target_node_id"] == CODER
    trace = TaskTrace.objects.get(task_id=task.payload["id"])
    assert trace.metadata["handoff_kind"] == "operation_to_operation"


def test_a_handoff_to_a_node_that_is_not_a_direct_child_fails_its_routing() -> None:
    send(
        ROOT,
        "vsm.operation_handoff",
        {
            "source_node_id": SYSTEM,
            "target_node_id": CODER,
            "kind": "ArtifactTransfer",
            "title": "Skip a level",
        },
        channel_type=VsmChannelType.OPERATION_TO_OPERATION,
    )
    drain_in_process()

    [failed] = events_of(kinds.TASK_ROUTING_FAILED)
    assert "not a direct child" in failed.payload["reason"]
    assert not Envelope.objects.filter(payload_type="vsm.task_packet").exists()


def test_an_assign_work_directive_is_routed_to_its_operation_node() -> None:
    send(
        SYSTEM,
        "vsm.management_operation_directive",
        {
            "manager_node_id": SYSTEM,
            "operation_node_id": CODER,
            "kind": "AssignWork",
            "title": "Tidy the module",
            "body": "split it",
        },
        channel_type=VsmChannelType.MANAGEMENT_TO_OPERATION,
        source_node_id=SYSTEM,
    )
    drain_in_process()

    task = Envelope.objects.get(target_node_id=CODER, payload_type="vsm.task_packet")
    assert task.payload["goal"] == "split it"
    assert task.metadata["management_kind"] == "management_to_operation"
    assert task.channel_type == "ManagementToOperation"


def test_environment_and_homeostat_signals_weigh_on_the_next_grant() -> None:
    send(
        SYSTEM,
        "vsm.three_four_homeostat_signal",
        {
            "system_3_node_id": SYSTEM,
            "system_4_node_id": SYSTEM,
            "target_node_id": CODER,
            "kind": "ResourceImbalance",
            "balance": "Conflict",
            "severity": 8,
            "recommendation": "slow down",
            "suggested_patches": [
                {"kind": "set_node_status", "node_id": CODER, "status": "Probation"}
            ],
        },
        channel_type=VsmChannelType.THREE_FOUR_HOMEOSTAT,
    )
    send(
        ROOT,
        "vsm.environment_signal",
        {"source_environment": "ci", "kind": "Risk", "summary": "main is red", "severity": 3},
        channel_type=VsmChannelType.OPERATION_TO_ENVIRONMENT,
    )
    drain_in_process()

    assert len(events_of(kinds.THREE_FOUR_HOMEOSTAT_SIGNAL)) == 1
    [suggestion] = events_of(kinds.GENE_SUGGESTION_CREATED)
    assert suggestion.payload["patch"]["kind"] == "set_node_status"
    assert [e.node_id for e in events_of(kinds.OPERATION_ENVIRONMENT_SIGNAL)] == [ROOT]
    # The homeostat pressure (risk 12, severity 8) quarters what the coder is granted.
    send(
        SYSTEM,
        "vsm.resource_bargain",
        {"requested_by": CODER, "requested_tokens": 800},
        channel_type=VsmChannelType.RESOURCE_BARGAINING,
        source_node_id=CODER,
    )
    drain_in_process()
    assert ResourceGrant.objects.get().approved_tokens == 200


def test_a_bargain_that_proposes_a_task_gets_it_accepted_and_sent_to_the_requester() -> None:
    proposed = {"id": "t-proposed", "title": "Refactor while I am here"}
    send(
        SYSTEM,
        "vsm.resource_bargain",
        {"requested_by": CODER, "requested_tokens": 50, "proposed_task": proposed},
        channel_type=VsmChannelType.RESOURCE_BARGAINING,
        source_node_id=CODER,
    )
    drain_in_process()

    [accepted] = events_of(kinds.RESOURCE_BARGAIN_WORK_ACCEPTED)
    assert accepted.payload["task_id"] == "t-proposed"
    task = Envelope.objects.get(target_node_id=CODER, payload_type="vsm.task_packet")
    assert task.payload["metadata"]["routing_reason"] == (
        "accepted through ResourceBargaining allocation"
    )
    assert TaskTrace.objects.get(task_id="t-proposed").metadata["resource_grant_status"] == (
        "Approved"
    )


def test_a_refused_bargain_is_answered_at_high_priority_with_the_allocation_policy() -> None:
    send(
        SYSTEM,
        "vsm.resource_bargain",
        {"requested_by": CODER, "justification": "asks for nothing concrete"},
        channel_type=VsmChannelType.RESOURCE_BARGAINING,
        source_node_id=CODER,
    )
    drain_in_process()

    reply = Envelope.objects.get(payload_type="vsm.resource_allocation_decision")
    assert reply.target_node_id == CODER
    assert reply.payload["status"] == "Denied"
    assert reply.priority == "High"
    assert reply.metadata["allocation_policy"] == "system3_genome_resource_policy_v1"
    assert "requested_by" not in reply.metadata
