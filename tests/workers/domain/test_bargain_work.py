"""A bargain that proposed its task: the task accepted with the grant goes to the requester."""

from __future__ import annotations

import pytest

from organization.genome import VsmChannelType
from tests.workers.domain.organizations import BACKEND, ROOT, envelope
from workers.domain.bargaining import (
    AllocationStatus,
    Budgets,
    CoordinationPressure,
    EpochUsage,
    ResourceAllocationDecision,
    accepted_task,
    work_accepted_payload,
)
from workers.domain.messages import PayloadType, TaskPacket

KEY = "2026-12-01T22:00:00Z"
INCOMING = envelope(
    VsmChannelType.RESOURCE_BARGAINING, PayloadType.RESOURCE_BARGAIN, source_node_id=BACKEND
)
PROPOSED = TaskPacket(id="t9", title="Refactor the auth module", metadata={"mine": "yes"})
BUDGETS = Budgets(tokens=1000, messages=5)
USAGE = EpochUsage(allocation_count=1, allocated_tokens=300)
PRESSURE = CoordinationPressure(
    event_count=1, contention_count=1, pressure=6.0, max_severity=6, reasons=("r",)
)


def decision(
    status: AllocationStatus = AllocationStatus.PARTIALLY_APPROVED,
) -> ResourceAllocationDecision:
    return ResourceAllocationDecision(
        requested_by=BACKEND,
        task_id="t9",
        status=status,
        approved_tokens=700,
        approved_tool_permissions=["read_filesystem"],
        denied_tool_permissions=["network"],
        approved_context_refs=["repo://src"],
        denied_context_refs=["secret://prod"],
    )


def accept(status: AllocationStatus = AllocationStatus.PARTIALLY_APPROVED) -> TaskPacket:
    return accepted_task(
        decision(status),
        PROPOSED,
        controller_id=ROOT,
        incoming=INCOMING,
        epoch_key=KEY,
        budgets=BUDGETS,
        usage=USAGE,
        coordination=PRESSURE,
    )


@pytest.mark.parametrize("status", [AllocationStatus.APPROVED, AllocationStatus.PARTIALLY_APPROVED])
def test_an_approved_proposed_task_goes_to_the_requester_with_the_grant(
    status: AllocationStatus,
) -> None:
    task = accept(status)

    assert task.id == "t9"
    assert task.assigned_to == BACKEND
    assert task.metadata == {
        "coordination_contention_count": "1",
        "coordination_dependency_blocked_count": "0",
        "coordination_max_severity": "6",
        "coordination_oscillation_count": "0",
        "coordination_pressure": "6.000",
        "coordination_pressure_count": "1",
        "coordination_pressure_reasons": "r",
        "mine": "yes",
        "resource_bargain_approved_context_refs": "repo://src",
        "resource_bargain_approved_tokens": "700",
        "resource_bargain_approved_tool_permissions": "read_filesystem",
        "resource_bargain_correlation_id": "corr-1",
        "resource_bargain_denied_context_refs": "secret://prod",
        "resource_bargain_denied_tool_permissions": "network",
        "resource_bargain_policy": "system3_genome_resource_policy_v1",
        "resource_bargain_request_message_id": "env-1",
        "resource_bargain_status": status.value,
        "resource_epoch_allocated_before_tokens": "300",
        "resource_epoch_allocation_count_after": "2",
        "resource_epoch_allocation_count_before": "1",
        "resource_epoch_approved_tokens": "700",
        "resource_epoch_budget_tokens": "1000",
        "resource_epoch_key": KEY,
        "resource_epoch_message_budget": "5",
        "resource_epoch_remaining_after_tokens": "0",
        "resource_epoch_remaining_before_tokens": "700",
        "resource_epoch_remaining_messages_after": "3",
        "resource_epoch_remaining_messages_before": "4",
        "routed_by": ROOT,
        "routing_reason": "accepted through ResourceBargaining allocation",
        "vsm_source_channel": "ResourceBargaining",
        "vsm_source_payload_type": "vsm.resource_bargain",
    }


def test_accepting_leaves_the_proposed_task_alone() -> None:
    accept()

    assert PROPOSED.metadata == {"mine": "yes"}
    assert PROPOSED.assigned_to is None


def test_a_denied_decision_accepts_no_work() -> None:
    with pytest.raises(ValueError, match="Denied"):
        accept(AllocationStatus.DENIED)


def test_the_work_accepted_event_says_who_what_and_how_the_epoch_moved() -> None:
    granted = decision()
    task = accept()

    payload = work_accepted_payload(
        granted,
        task,
        controller_id=ROOT,
        incoming=INCOMING,
        epoch_key=KEY,
        budgets=BUDGETS,
        usage=USAGE,
        coordination=PRESSURE,
    )

    assert payload == {
        "controller_node_id": ROOT,
        "requested_by": BACKEND,
        "task_id": "t9",
        "task_title": "Refactor the auth module",
        "request_message_id": "env-1",
        "correlation_id": "corr-1",
        "status": "PartiallyApproved",
        "approved_tokens": 700,
        "approved_tool_permissions": ["read_filesystem"],
        "denied_tool_permissions": ["network"],
        "approved_context_refs": ["repo://src"],
        "denied_context_refs": ["secret://prod"],
        "epoch_key": KEY,
        "epoch": {
            "allocation_count_before": 1,
            "allocation_count_after": 2,
            "allocated_before_tokens": 300,
            "approved_tokens": 700,
            "budget_tokens": 1000,
            "remaining_before_tokens": 700,
            "remaining_after_tokens": 0,
            "message_budget": 5,
            "remaining_messages_before": 4,
            "remaining_messages_after": 3,
        },
        "coordination_pressure": PRESSURE.as_json(),
    }
