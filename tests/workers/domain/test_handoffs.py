"""Typed handoffs between operations, and management directives to an operation."""

from __future__ import annotations

import pytest

from organization.genome import VsmChannelType
from tests.workers.domain.organizations import (
    BACKEND,
    FRONTEND,
    PLATFORM_CODER,
    RETIRED,
    ROOT,
    envelope,
    organization,
)
from workers.domain.channel_messages import (
    HandoffKind,
    ManagementDirectiveKind,
    ManagementOperationDirective,
    OperationHandoff,
)
from workers.domain.handoffs import (
    handoff_event,
    handoff_task,
    management_event,
    management_task,
)
from workers.domain.lineage import annotate_from_incoming, mark_target, relayed_metadata
from workers.domain.messages import PayloadType, RiskClass, TaskArtifact, to_json
from workers.domain.routing import NoRouteableChild

HANDOFF_IN = envelope(VsmChannelType.OPERATION_TO_OPERATION, PayloadType.OPERATION_HANDOFF)
MANAGEMENT_IN = envelope(
    VsmChannelType.MANAGEMENT_TO_OPERATION,
    PayloadType.MANAGEMENT_OPERATION_DIRECTIVE,
    source_node_id=ROOT,
)


def handoff(**fields: object) -> OperationHandoff:
    values: dict[str, object] = {
        "source_node_id": FRONTEND,
        "target_node_id": BACKEND,
        "related_task_id": "t1",
        "dependency_task_ids": ["t0", "t1"],
        "kind": HandoffKind.ARTIFACT_TRANSFER,
        "title": "Wire the form to the API",
        "summary": "form ready",
        "artifacts": [
            TaskArtifact(kind="diff", uri="repo://form.diff"),
            TaskArtifact(kind="note", content="see the ticket"),
            TaskArtifact(kind="screenshot", uri="file://form.png"),
        ],
        "evidence": ["tests pass", "lint clean"],
        "metadata": {"ticket": "42"},
        **fields,
    }
    return OperationHandoff(**values)  # type: ignore[arg-type]


def directive(**fields: object) -> ManagementOperationDirective:
    values: dict[str, object] = {
        "manager_node_id": ROOT,
        "operation_node_id": BACKEND,
        "related_task_id": "t1",
        "dependency_task_ids": ["t0"],
        "kind": ManagementDirectiveKind.REPRIORITIZE,
        "title": "Fix the login bug first",
        "body": "Users cannot log in.",
        "target_state": "login works",
        "constraints": ["no schema change"],
        "context_refs": ["repo://auth"],
        "authority_refs": ["policy://sla"],
        "risk": RiskClass.HIGH,
        "metadata": {"ticket": "42", "required_capability": "write_code", "target_child": BACKEND},
        **fields,
    }
    return ManagementOperationDirective(**values)  # type: ignore[arg-type]


def test_a_handoff_is_recorded_with_where_it_came_from() -> None:
    received = handoff()

    event = handoff_event(received, HANDOFF_IN)

    assert event.kind == "operation_handoff_received"
    assert event.payload == {
        **to_json(received),
        "source_channel": "OperationToOperation",
        "source_payload_type": "vsm.operation_handoff",
        "causation_id": "env-1",
        "correlation_id": "corr-1",
    }
    assert event.metadata == {
        "source_channel": "OperationToOperation",
        "handoff_operation_kind": "ArtifactTransfer",
    }
    assert (event.task_id, event.correlation_id) == ("t1", "corr-1")


def test_a_handoff_becomes_a_task_for_its_target() -> None:
    task = handoff_task(
        handoff(), controller_node_id=ROOT, genome=organization(), incoming=HANDOFF_IN
    )

    assert task.title == "Wire the form to the API"
    assert task.goal == (
        f"Continue operation handoff from {FRONTEND} to {BACKEND}. Summary: form ready "
        "Artifacts: diff, note, screenshot. Evidence: tests pass; lint clean"
    )
    assert task.assigned_to == BACKEND
    assert task.parent_task_id == "t1"
    assert task.dependencies == ["t0", "t1"]
    assert task.risk is RiskClass.MEDIUM
    assert task.context_refs == ["repo://form.diff", "file://form.png"]
    assert task.metadata == {
        "handoff_artifact_count": "3",
        "handoff_artifact_refs": "repo://form.diff,file://form.png",
        "handoff_dependency_task_ids": "t0,t1",
        "handoff_envelope_id": "env-1",
        "handoff_kind": "operation_to_operation",
        "handoff_metadata.ticket": "42",
        "handoff_operation_kind": "ArtifactTransfer",
        "handoff_related_task_id": "t1",
        "handoff_source_node_id": FRONTEND,
        "handoff_summary": "form ready",
        "handoff_target_node_id": BACKEND,
        "requires_code_write": "false",
        "source_payload_type": "vsm.operation_handoff",
    }


def test_a_blocked_dependency_handoff_is_high_risk() -> None:
    task = handoff_task(
        handoff(kind=HandoffKind.DEPENDENCY_BLOCKED),
        controller_node_id=ROOT,
        genome=organization(),
        incoming=HANDOFF_IN,
    )

    assert task.risk is RiskClass.HIGH


def test_a_bare_handoff_has_a_bare_goal_and_no_optional_keys() -> None:
    task = handoff_task(
        handoff(artifacts=[], evidence=[], related_task_id=None, dependency_task_ids=[]),
        controller_node_id=ROOT,
        genome=organization(),
        incoming=HANDOFF_IN,
    )

    assert (
        task.goal == f"Continue operation handoff from {FRONTEND} to {BACKEND}. Summary: form ready"
    )
    assert task.parent_task_id is None
    assert task.context_refs == []
    for absent in (
        "handoff_related_task_id",
        "handoff_dependency_task_ids",
        "handoff_artifact_refs",
    ):
        assert absent not in task.metadata
    assert task.metadata["handoff_artifact_count"] == "0"


def test_the_same_artifact_uri_is_referenced_once() -> None:
    artifacts = [
        TaskArtifact(kind="diff", uri="repo://a"),
        TaskArtifact(kind="log", uri="repo://a"),
    ]

    task = handoff_task(
        handoff(artifacts=artifacts),
        controller_node_id=ROOT,
        genome=organization(),
        incoming=HANDOFF_IN,
    )

    assert task.context_refs == ["repo://a"]
    assert task.metadata["handoff_artifact_count"] == "2"


def test_an_other_handoff_kind_is_named_by_its_description() -> None:
    task = handoff_task(
        handoff(kind=HandoffKind.OTHER, other_kind="pairing"),
        controller_node_id=ROOT,
        genome=organization(),
        incoming=HANDOFF_IN,
    )

    assert task.metadata["handoff_operation_kind"] == "other:pairing"


@pytest.mark.parametrize("target", [PLATFORM_CODER, "ghost", ROOT, RETIRED])
def test_a_handoff_to_anything_but_a_live_direct_child_cannot_be_routed(target: str) -> None:
    with pytest.raises(NoRouteableChild) as raised:
        handoff_task(
            handoff(target_node_id=target),
            controller_node_id=ROOT,
            genome=organization(),
            incoming=HANDOFF_IN,
        )

    assert raised.value.node_id == ROOT
    assert target in str(raised.value)


def test_a_management_directive_is_recorded_with_where_it_came_from() -> None:
    received = directive()

    event = management_event(received, MANAGEMENT_IN)

    assert event.kind == "management_operation_directive_received"
    assert event.payload == {
        **to_json(received),
        "source_channel": "ManagementToOperation",
        "source_payload_type": "vsm.management_operation_directive",
        "causation_id": "env-1",
        "correlation_id": "corr-1",
    }
    assert event.metadata == {
        "source_channel": "ManagementToOperation",
        "management_operation_kind": "Reprioritize",
    }
    assert event.task_id == "t1"


def test_a_management_directive_becomes_a_task_for_its_operation() -> None:
    task = management_task(
        directive(), controller_node_id=ROOT, genome=organization(), incoming=MANAGEMENT_IN
    )

    assert task.title == "Fix the login bug first"
    assert task.goal == "Users cannot log in."
    assert task.assigned_to == BACKEND
    assert task.parent_task_id == "t1"
    assert task.dependencies == ["t0"]
    assert task.target_state == "login works"
    assert task.constraints == ["no schema change"]
    assert task.context_refs == ["repo://auth"]
    assert task.authority_refs == ["policy://sla"]
    assert task.risk is RiskClass.HIGH
    assert task.metadata == {
        "management_dependency_task_ids": "t0",
        "management_directive_message_id": "env-1",
        "management_kind": "management_to_operation",
        "management_metadata.required_capability": "write_code",
        "management_metadata.target_child": BACKEND,
        "management_metadata.ticket": "42",
        "management_operation_kind": "Reprioritize",
        "management_policy": "management_operation_directive_v1",
        "management_related_task_id": "t1",
        "management_source_node_id": ROOT,
        "management_target_node_id": BACKEND,
        "required_capability": "write_code",
        "source_payload_type": "vsm.management_operation_directive",
        "target_child": BACKEND,
    }


def test_requires_code_write_in_a_management_directive_applies_as_is() -> None:
    task = management_task(
        directive(metadata={"requires_code_write": "true"}),
        controller_node_id=ROOT,
        genome=organization(),
        incoming=MANAGEMENT_IN,
    )

    assert task.metadata["requires_code_write"] == "true"
    assert task.metadata["management_metadata.requires_code_write"] == "true"


@pytest.mark.parametrize("operation", [PLATFORM_CODER, "ghost", RETIRED])
def test_a_directive_to_anything_but_a_live_direct_child_cannot_be_routed(operation: str) -> None:
    with pytest.raises(NoRouteableChild, match=operation):
        management_task(
            directive(operation_node_id=operation),
            controller_node_id=ROOT,
            genome=organization(),
            incoming=MANAGEMENT_IN,
        )


def test_routing_a_handoff_task_adds_the_envelope_lineage_and_keeps_the_handoffs_own() -> None:
    task = handoff_task(
        handoff(), controller_node_id=ROOT, genome=organization(), incoming=HANDOFF_IN
    )

    routed = mark_target(annotate_from_incoming(task, HANDOFF_IN, controller_node_id=ROOT), BACKEND)

    assert routed.metadata["handoff_channel"] == "OperationToOperation"
    assert routed.metadata["handoff_via_controller_node_id"] == ROOT
    assert routed.metadata["handoff_source_node_id"] == FRONTEND
    assert routed.metadata["handoff_target_node_id"] == BACKEND
    assert routed.metadata["vsm_source_channel"] == "OperationToOperation"
    assert relayed_metadata(routed)["handoff_artifact_refs"] == "repo://form.diff,file://form.png"
