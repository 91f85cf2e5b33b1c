"""Routing lineage: what a routed task carries about the envelope that brought it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from organization.genome import VsmChannelType
from tests.workers.domain.organizations import BACKEND, FRONTEND, envelope
from workers.domain.lineage import (
    COMMAND_KEYS,
    COORDINATION_KEYS,
    HANDOFF_KEYS,
    MANAGEMENT_KEYS,
    RELAYED_KEYS,
    TASK_ROUTED_KEYS,
    annotate_from_incoming,
    mark_target,
    relayed_metadata,
    task_routed_lineage,
)
from workers.domain.messages import PayloadType, TaskPacket

SIBLING = VsmChannelType.OPERATION_TO_OPERATION
MANAGEMENT = VsmChannelType.MANAGEMENT_TO_OPERATION


def task(**metadata: str) -> TaskPacket:
    return TaskPacket(id="task-1", title="Do it", metadata=dict(metadata))


def test_every_routed_task_records_the_channel_and_payload_type_it_came_in_on() -> None:
    incoming = envelope(VsmChannelType.RESOURCE_BARGAINING, PayloadType.TASK_PACKET)

    annotated = annotate_from_incoming(task(), incoming, controller_node_id="root")

    assert annotated.metadata == {
        "vsm_source_channel": "ResourceBargaining",
        "vsm_source_payload_type": "vsm.task_packet",
    }


def test_the_channel_is_written_as_the_projects_channel_value() -> None:
    for channel in VsmChannelType:
        incoming = envelope(channel, PayloadType.TASK_PACKET)

        annotated = annotate_from_incoming(task(), incoming, controller_node_id="root")

        assert annotated.metadata["vsm_source_channel"] == channel.value


def test_a_task_from_a_sibling_carries_the_handoff_lineage() -> None:
    incoming = envelope(SIBLING, PayloadType.TASK_PACKET)

    annotated = annotate_from_incoming(task(), incoming, controller_node_id="root")

    assert annotated.metadata == {
        "handoff_causation_id": "cause-1",
        "handoff_channel": "OperationToOperation",
        "handoff_correlation_id": "corr-1",
        "handoff_envelope_id": "env-1",
        "handoff_kind": "operation_to_operation",
        "handoff_source_node_id": FRONTEND,
        "handoff_via_controller_node_id": "root",
        "vsm_source_channel": "OperationToOperation",
        "vsm_source_payload_type": "vsm.task_packet",
    }


def test_a_task_from_management_carries_the_management_lineage() -> None:
    incoming = envelope(MANAGEMENT, PayloadType.TASK_PACKET, source_node_id="root")

    annotated = annotate_from_incoming(task(), incoming, controller_node_id="root")

    assert annotated.metadata == {
        "management_causation_id": "cause-1",
        "management_channel": "ManagementToOperation",
        "management_correlation_id": "corr-1",
        "management_envelope_id": "env-1",
        "management_kind": "management_to_operation",
        "management_source_node_id": "root",
        "management_via_controller_node_id": "root",
        "vsm_source_channel": "ManagementToOperation",
        "vsm_source_payload_type": "vsm.task_packet",
    }


def test_absent_envelope_ids_leave_their_lineage_keys_out() -> None:
    incoming = envelope(SIBLING, PayloadType.TASK_PACKET, source_node_id=None)
    incoming.correlation_id = incoming.causation_id = None

    metadata = annotate_from_incoming(task(), incoming, controller_node_id="root").metadata

    assert "handoff_source_node_id" not in metadata
    assert "handoff_correlation_id" not in metadata
    assert "handoff_causation_id" not in metadata


def test_other_channels_add_no_handoff_or_management_keys() -> None:
    incoming = envelope(VsmChannelType.COMMAND, PayloadType.COMMAND)

    metadata = annotate_from_incoming(task(), incoming, controller_node_id="root").metadata

    assert not [key for key in metadata if key.startswith(("handoff_", "management_"))]


def test_relayed_down_a_nested_metasystem_a_task_keeps_its_origin_but_not_its_last_hop() -> None:
    first = annotate_from_incoming(
        task(), envelope(SIBLING, PayloadType.OPERATION_HANDOFF), controller_node_id="root"
    )
    relay = envelope(
        SIBLING, PayloadType.TASK_PACKET, id="env-2", source_node_id="root", causation_id="env-1"
    )

    second = annotate_from_incoming(first, relay, controller_node_id="platform-system")

    assert second.metadata["handoff_envelope_id"] == "env-1"
    assert second.metadata["handoff_source_node_id"] == FRONTEND
    assert second.metadata["handoff_via_controller_node_id"] == "root"
    assert second.metadata["vsm_source_payload_type"] == "vsm.task_packet"


def test_annotating_leaves_the_original_task_alone() -> None:
    original = task(a="1")

    annotate_from_incoming(
        original, envelope(SIBLING, PayloadType.TASK_PACKET), controller_node_id="root"
    )

    assert original.metadata == {"a": "1"}


@pytest.mark.parametrize(
    ("kind_key", "kind", "target_key"),
    [
        ("handoff_kind", "operation_to_operation", "handoff_target_node_id"),
        ("management_kind", "management_to_operation", "management_target_node_id"),
    ],
)
def test_the_chosen_child_becomes_the_lineage_target(
    kind_key: str, kind: str, target_key: str
) -> None:
    marked = mark_target(task(**{kind_key: kind, target_key: FRONTEND}), BACKEND)

    assert marked.metadata[target_key] == BACKEND


def test_a_task_without_lineage_gets_no_target_key() -> None:
    assert mark_target(task(a="1"), BACKEND).metadata == {"a": "1"}


def test_marking_the_target_and_routing_it_leave_the_original_task_alone() -> None:
    original = task(handoff_kind="operation_to_operation", handoff_target_node_id=FRONTEND)

    marked = mark_target(original, BACKEND)
    marked.assigned_to = BACKEND  # what the router does to the copy next
    marked.metadata["routed_by"] = "root"

    assert original.metadata == {
        "handoff_kind": "operation_to_operation",
        "handoff_target_node_id": FRONTEND,
    }
    assert original.assigned_to is None
    assert marked.id == original.id and marked.dependencies == original.dependencies


def test_relayed_metadata_is_every_present_key_of_the_four_families_and_nothing_else() -> None:
    routed = task(
        handoff_kind="operation_to_operation",
        handoff_metadata_extra="no",
        management_policy="management_operation_directive_v1",
        coordination_kind="Contention",
        command_issued_by="root",
        requires_code_write="true",
        vsm_source_channel="Command",
    )

    assert relayed_metadata(routed) == {
        "handoff_kind": "operation_to_operation",
        "management_policy": "management_operation_directive_v1",
        "coordination_kind": "Contention",
        "command_issued_by": "root",
    }


def test_the_key_families_are_the_documented_ones() -> None:
    assert len(HANDOFF_KEYS) == 14
    assert len(MANAGEMENT_KEYS) == 13
    assert len(COORDINATION_KEYS) == 8
    assert len(COMMAND_KEYS) == 8
    assert RELAYED_KEYS == HANDOFF_KEYS + MANAGEMENT_KEYS + COORDINATION_KEYS + COMMAND_KEYS


def test_the_task_routed_event_lists_every_key_but_the_long_ones_none_when_absent() -> None:
    lineage = task_routed_lineage(task(handoff_kind="operation_to_operation"))

    assert set(lineage) == set(TASK_ROUTED_KEYS)
    assert lineage["handoff_kind"] == "operation_to_operation"
    assert lineage["command_issued_by"] is None
    for left_out in (
        "handoff_artifact_refs",
        "handoff_summary",
        "coordination_affected_node_ids",
        "coordination_affected_task_ids",
    ):
        assert left_out not in lineage


@given(
    channel=st.sampled_from(VsmChannelType),
    metadata=st.dictionaries(st.sampled_from([*RELAYED_KEYS, "mine", "vsm_x"]), st.text()),
)
def test_annotating_never_drops_or_changes_a_key_but_the_source_ones(
    channel: VsmChannelType, metadata: dict[str, str]
) -> None:
    annotated = annotate_from_incoming(
        task(**metadata), envelope(channel, PayloadType.TASK_PACKET), controller_node_id="root"
    )

    for key, value in metadata.items():
        assert annotated.metadata[key] == value
    assert set(relayed_metadata(annotated)) <= set(RELAYED_KEYS)
