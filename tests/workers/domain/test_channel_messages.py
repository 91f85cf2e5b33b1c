"""The channel payloads: their wire form, and kinds with free text."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workers.domain.channel_messages import (
    CoordinationKind,
    EnvironmentSignal,
    EnvironmentSignalKind,
    HandoffKind,
    HomeostatBalance,
    HomeostatKind,
    ManagementDirectiveKind,
    ManagementOperationDirective,
    OperationHandoff,
    System2CoordinationSignal,
    ThreeFourHomeostatSignal,
    kind_label,
)
from workers.domain.messages import RiskClass, TaskArtifact, from_json, to_json

SIGNAL = System2CoordinationSignal(
    coordinator_node_id="root",
    source_node_id="frontend-coder",
    target_node_id="backend-coder",
    affected_node_ids=["frontend-coder", "backend-coder"],
    affected_task_ids=["t1", "t2"],
    kind=CoordinationKind.CONTENTION,
    summary="both edit settings.py",
    evidence=["a", "b"],
    severity=6,
    metadata={"z": "1", "a": "2"},
)
HANDOFF = OperationHandoff(
    source_node_id="frontend-coder",
    target_node_id="backend-coder",
    related_task_id="t1",
    dependency_task_ids=["t0"],
    kind=HandoffKind.ARTIFACT_TRANSFER,
    title="Wire the form to the API",
    summary="form ready",
    artifacts=[TaskArtifact(kind="diff", uri="repo://form.diff", metadata={"lines": "40"})],
    evidence=["tests pass"],
)
DIRECTIVE = ManagementOperationDirective(
    manager_node_id="root",
    operation_node_id="backend-coder",
    kind=ManagementDirectiveKind.REPRIORITIZE,
    title="Fix the login bug first",
    body="Users cannot log in.",
    target_state="login works",
    constraints=["no schema change"],
    context_refs=["repo://auth"],
    authority_refs=["policy://sla"],
    risk=RiskClass.HIGH,
)
ENVIRONMENT = EnvironmentSignal(
    observed_by_node_id="backend-coder",
    source_environment="ci",
    target_environment="repository",
    kind=EnvironmentSignalKind.RISK,
    summary="main is red",
    evidence=["job 42 failed"],
    severity=8,
)
HOMEOSTAT = ThreeFourHomeostatSignal(
    system_3_node_id="root",
    system_4_node_id="root",
    target_node_id="backend-coder",
    kind=HomeostatKind.RESOURCE_IMBALANCE,
    balance=HomeostatBalance.CONFLICT,
    present_summary="backend overloaded",
    future_summary="more API work coming",
    recommendation="Add a second backend coder.",
    suggested_patches=[{"kind": "remove_subtree", "node_id": "frontend-coder"}],
    severity=8,
)
PAYLOADS: list[Any] = [SIGNAL, HANDOFF, DIRECTIVE, ENVIRONMENT, HOMEOSTAT]


@pytest.mark.parametrize("payload", PAYLOADS, ids=lambda p: type(p).__name__)
def test_every_payload_survives_a_round_trip_through_its_wire_form(payload: Any) -> None:
    wire = to_json(payload)

    assert from_json(type(payload), wire) == payload
    assert to_json(from_json(type(payload), wire)) == wire


def test_kinds_and_enums_travel_as_their_variant_names() -> None:
    assert to_json(SIGNAL)["kind"] == "Contention"
    assert to_json(HOMEOSTAT)["balance"] == "Conflict"
    assert to_json(DIRECTIVE)["risk"] == "High"
    assert to_json(HANDOFF)["artifacts"][0] == {
        "kind": "diff",
        "uri": "repo://form.diff",
        "content": None,
        "metadata": {"lines": "40"},
    }


def test_a_homeostat_signal_carries_its_suggested_patches_as_patch_json() -> None:
    assert to_json(HOMEOSTAT)["suggested_patches"] == [
        {"kind": "remove_subtree", "node_id": "frontend-coder"}
    ]


def test_missing_fields_take_their_defaults() -> None:
    directive = from_json(
        ManagementOperationDirective,
        {
            "manager_node_id": "root",
            "operation_node_id": "backend-coder",
            "kind": "AssignWork",
            "title": "Do it",
        },
    )

    assert directive.risk is RiskClass.MEDIUM
    assert directive.dependency_task_ids == []
    assert directive.other_kind is None


def test_an_other_kind_travels_flat_with_its_description() -> None:
    signal = EnvironmentSignal(
        source_environment="users",
        kind=EnvironmentSignalKind.OTHER,
        other_kind="press coverage",
    )
    wire = to_json(signal)

    assert (wire["kind"], wire["other_kind"]) == ("Other", "press coverage")
    assert from_json(EnvironmentSignal, wire) == signal


def test_the_label_of_a_kind_is_its_name_or_other_colon_its_description() -> None:
    assert kind_label(CoordinationKind.OSCILLATION, None) == "Oscillation"
    assert kind_label(HandoffKind.OTHER, "pairing") == "other:pairing"


def test_kind_other_without_a_description_is_refused() -> None:
    with pytest.raises(ValueError, match="other_kind"):
        System2CoordinationSignal(coordinator_node_id="root", kind=CoordinationKind.OTHER)


def test_a_description_on_a_known_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="only for kind Other"):
        OperationHandoff(
            source_node_id="a",
            target_node_id="b",
            title="x",
            kind=HandoffKind.REVIEW_REQUEST,
            other_kind="review",
        )


def test_an_environment_signal_has_an_id_of_its_own() -> None:
    first = EnvironmentSignal(source_environment="ci", kind=EnvironmentSignalKind.RISK)
    second = EnvironmentSignal(source_environment="ci", kind=EnvironmentSignalKind.RISK)

    assert first.id != second.id


@given(
    kind=st.sampled_from(CoordinationKind),
    severity=st.none() | st.integers(min_value=0, max_value=255),
    summary=st.text(),
    evidence=st.lists(st.text()),
    metadata=st.dictionaries(st.text(), st.text()),
)
def test_any_coordination_signal_round_trips(
    kind: CoordinationKind,
    severity: int | None,
    summary: str,
    evidence: list[str],
    metadata: dict[str, str],
) -> None:
    other = "something else" if kind is CoordinationKind.OTHER else None
    signal = System2CoordinationSignal(
        coordinator_node_id="root",
        kind=kind,
        other_kind=other,
        severity=severity,
        summary=summary,
        evidence=evidence,
        metadata=metadata,
    )

    assert from_json(System2CoordinationSignal, to_json(signal)) == signal
