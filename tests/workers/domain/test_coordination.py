"""System 2 coordination: every signal is recorded, serious ones get a dampening task."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from organization.genome import VsmChannelType
from tests.workers.domain.organizations import (
    BACKEND,
    FRONTEND,
    PLATFORM_CODER,
    ROOT,
    envelope,
    organization,
)
from workers.domain.channel_messages import CoordinationKind, System2CoordinationSignal
from workers.domain.coordination import (
    coordination_event,
    dampening_created_payload,
    dampening_envelope,
    dampening_task,
)
from workers.domain.messages import PayloadType, RiskClass, to_json

INCOMING = envelope(VsmChannelType.SYSTEM2_COORDINATION, PayloadType.SYSTEM2_COORDINATION_SIGNAL)


def signal(
    kind: CoordinationKind = CoordinationKind.CONTENTION,
    severity: int | None = 6,
    **fields: object,
) -> System2CoordinationSignal:
    values: dict[str, object] = {
        "coordinator_node_id": ROOT,
        "source_node_id": FRONTEND,
        "target_node_id": BACKEND,
        "affected_node_ids": [FRONTEND, BACKEND],
        "affected_task_ids": ["t1", "t2"],
        "summary": "both edit settings.py",
        "evidence": ["a", "b"],
        **fields,
    }
    return System2CoordinationSignal(kind=kind, severity=severity, **values)  # type: ignore[arg-type]


def dampen(coordination: System2CoordinationSignal) -> object:
    return dampening_task(
        coordination,
        controller_node_id=ROOT,
        genome=organization(),
        incoming_envelope_id="env-1",
    )


def test_the_event_carries_the_signal_and_where_it_came_from() -> None:
    coordination = signal()

    event = coordination_event(coordination, INCOMING)

    assert event.kind == "system2_coordination_signal"
    assert event.payload == {
        **to_json(coordination),
        "source_channel": "System2Coordination",
        "source_payload_type": "vsm.system2_coordination_signal",
        "causation_id": "env-1",
        "correlation_id": "corr-1",
    }
    assert event.metadata == {
        "source_channel": "System2Coordination",
        "coordination_kind": "Contention",
        "severity": "6",
    }
    assert (event.task_id, event.correlation_id) == ("t1", "corr-1")


def test_an_event_without_severity_or_tasks_says_so_by_leaving_them_out() -> None:
    event = coordination_event(signal(severity=None, affected_task_ids=[]), INCOMING)

    assert "severity" not in event.metadata
    assert event.task_id is None


def test_an_event_of_kind_other_names_it_by_its_description() -> None:
    coordination = signal(CoordinationKind.OTHER, other_kind="noisy neighbour")

    assert coordination_event(coordination, INCOMING).metadata["coordination_kind"] == (
        "other:noisy neighbour"
    )


@pytest.mark.parametrize(
    ("kind", "severity", "dampened"),
    [
        (CoordinationKind.CONTENTION, 4, False),
        (CoordinationKind.CONTENTION, 5, True),
        (CoordinationKind.OSCILLATION, 4, False),
        (CoordinationKind.OSCILLATION, 5, True),
        (CoordinationKind.DEPENDENCY_BLOCKED, 6, False),
        (CoordinationKind.DEPENDENCY_BLOCKED, 7, True),
        (CoordinationKind.DEPENDENCY_READY, 10, False),
        (CoordinationKind.HANDOFF_NOTICE, 10, False),
        (CoordinationKind.CONTENTION, None, False),
    ],
)
def test_only_contention_and_oscillation_from_5_and_blocked_dependencies_from_7_are_dampened(
    kind: CoordinationKind, severity: int | None, dampened: bool
) -> None:
    assert (dampen(signal(kind, severity)) is not None) is dampened


def test_an_other_kind_is_never_dampened() -> None:
    assert dampen(signal(CoordinationKind.OTHER, 10, other_kind="x")) is None


def test_the_dampening_task_names_the_kind_and_says_what_to_do() -> None:
    task = dampening_task(
        signal(CoordinationKind.OSCILLATION, 6),
        controller_node_id=ROOT,
        genome=organization(),
        incoming_envelope_id="env-1",
    )

    assert task is not None
    assert task.title == "Dampen System 2 Oscillation"
    assert task.goal == (
        "Coordinate affected System 1 units to dampen Oscillation. "
        "Summary: both edit settings.py Evidence: a; b"
    )
    assert task.dependencies == ["t1", "t2"]
    assert task.risk is RiskClass.MEDIUM
    assert task.assigned_to == BACKEND
    assert task.metadata == {
        "coordination_affected_node_ids": f"{FRONTEND},{BACKEND}",
        "coordination_affected_task_ids": "t1,t2",
        "coordination_kind": "Oscillation",
        "coordination_policy": "system2_dampening_v1",
        "coordination_severity": "6",
        "coordination_signal_message_id": "env-1",
        "coordination_source_node_id": FRONTEND,
        "coordination_target_node_id": BACKEND,
        "decomposition_authority": "system2",
        "requires_code_write": "false",
        "target_child": BACKEND,
        "vsm_coordination_summary": "both edit settings.py",
    }


def test_a_goal_without_evidence_ends_with_the_summary() -> None:
    task = dampening_task(
        signal(evidence=[]),
        controller_node_id=ROOT,
        genome=organization(),
        incoming_envelope_id="env-1",
    )

    assert task is not None
    assert task.goal.endswith("Summary: both edit settings.py")


@pytest.mark.parametrize(("severity", "risk"), [(7, RiskClass.MEDIUM), (8, RiskClass.HIGH)])
def test_severity_8_makes_the_dampening_task_high_risk(severity: int, risk: RiskClass) -> None:
    task = dampening_task(
        signal(severity=severity),
        controller_node_id=ROOT,
        genome=organization(),
        incoming_envelope_id="env-1",
    )

    assert task is not None
    assert task.risk is risk


def test_without_a_source_the_coordinator_is_the_coordination_source() -> None:
    task = dampening_task(
        signal(source_node_id=None),
        controller_node_id=ROOT,
        genome=organization(),
        incoming_envelope_id="env-1",
    )

    assert task is not None
    assert task.metadata["coordination_source_node_id"] == ROOT


def test_without_a_target_the_first_affected_direct_child_is_assigned() -> None:
    task = dampening_task(
        signal(target_node_id=None, affected_node_ids=["ghost", PLATFORM_CODER, FRONTEND]),
        controller_node_id=ROOT,
        genome=organization(),
        incoming_envelope_id="env-1",
    )

    assert task is not None
    assert task.assigned_to == FRONTEND
    assert "target_child" not in task.metadata
    assert "coordination_target_node_id" not in task.metadata


def test_a_target_that_is_not_a_direct_child_gives_way_to_an_affected_one() -> None:
    task = dampening_task(
        signal(target_node_id=PLATFORM_CODER, affected_node_ids=[BACKEND]),
        controller_node_id=ROOT,
        genome=organization(),
        incoming_envelope_id="env-1",
    )

    assert task is not None
    assert task.assigned_to == BACKEND
    assert task.metadata["target_child"] == PLATFORM_CODER


def test_when_no_named_node_is_a_direct_child_the_router_chooses() -> None:
    task = dampening_task(
        signal(target_node_id=None, affected_node_ids=[PLATFORM_CODER]),
        controller_node_id=ROOT,
        genome=organization(),
        incoming_envelope_id="env-1",
    )

    assert task is not None
    assert task.assigned_to is None


def test_the_dampening_task_is_routed_as_arriving_on_system2_coordination() -> None:
    incoming = envelope(VsmChannelType.RESOURCE_BARGAINING, PayloadType.SYSTEM2_COORDINATION_SIGNAL)

    synthetic = dampening_envelope(incoming)

    assert synthetic.channel_type is VsmChannelType.SYSTEM2_COORDINATION
    assert (synthetic.id, synthetic.correlation_id) == (incoming.id, incoming.correlation_id)
    assert incoming.channel_type is VsmChannelType.RESOURCE_BARGAINING


def test_the_dampening_created_event_names_the_task_and_the_signal() -> None:
    coordination = signal(severity=8)
    task = dampening_task(
        coordination, controller_node_id=ROOT, genome=organization(), incoming_envelope_id="env-1"
    )
    assert task is not None

    payload = dampening_created_payload(
        coordination, task, controller_node_id=ROOT, incoming=INCOMING
    )

    assert payload == {
        "controller_node_id": ROOT,
        "task_id": task.id,
        "task_title": "Dampen System 2 Contention",
        "assigned_to": BACKEND,
        "coordination_kind": "Contention",
        "severity": 8,
        "risk": "High",
        "affected_node_ids": [FRONTEND, BACKEND],
        "affected_task_ids": ["t1", "t2"],
        "signal_message_id": "env-1",
        "source_channel": "System2Coordination",
        "correlation_id": "corr-1",
    }


@given(
    kind=st.sampled_from([k for k in CoordinationKind if k is not CoordinationKind.OTHER]),
    severity=st.none() | st.integers(min_value=0, max_value=255),
)
def test_a_signal_is_dampened_exactly_when_its_kind_reaches_its_threshold(
    kind: CoordinationKind, severity: int | None
) -> None:
    thresholds = {
        CoordinationKind.CONTENTION: 5,
        CoordinationKind.OSCILLATION: 5,
        CoordinationKind.DEPENDENCY_BLOCKED: 7,
    }
    expected = kind in thresholds and (severity or 0) >= thresholds[kind]

    task = dampen(signal(kind, severity))

    assert (task is not None) is expected
