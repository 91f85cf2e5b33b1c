"""Patches on the wire: ``{"kind": ..., ...}``, strict parsing, fully determined once parsed."""

from __future__ import annotations

import json
from typing import Any

import pytest

from organization.genome import (
    PATCH_KINDS,
    AddChannel,
    AddChild,
    AddPromptComponent,
    AddTool,
    Batch,
    GenomeFormatError,
    NodeLifecycleStatus,
    PromoteLeafToMetasystem,
    PromptSection,
    RemoveChannel,
    RemovePromptComponent,
    RemoveSubtree,
    RemoveTool,
    SetNodeStatus,
    apply_patch,
    nested,
    parse_patch,
    patch_to_json,
)

EVERY_KIND: list[dict[str, Any]] = [
    {"kind": "add_child", "parent_id": "backend-system", "child": {"name": "reviewer"}},
    {
        "kind": "promote_leaf_to_metasystem",
        "node_id": "backend-coder",
        "extracted_child_name": "backend-coder-worker",
    },
    {"kind": "remove_subtree", "node_id": "backend-coder"},
    {
        "kind": "add_channel",
        "channel": {
            "channel_type": "OperationToOperation",
            "from": "backend-coder",
            "to": "backend-system",
            "direction": "SiblingToSibling",
            "priority": "High",
        },
    },
    {"kind": "remove_channel", "channel_id": "nope"},
    {
        "kind": "add_prompt_component",
        "node_id": "backend-coder",
        "section": "NegativeConstraints",
        "component": {"text": "never push to main", "origin": "SystemPolicy"},
    },
    {"kind": "remove_prompt_component", "node_id": "backend-coder", "component_id": "c"},
    {"kind": "add_tool", "node_id": "backend-coder", "tool": {"name": "shell"}},
    {"kind": "remove_tool", "node_id": "backend-coder", "tool_name": "shell"},
    {"kind": "set_node_status", "node_id": "backend-coder", "status": "Probation"},
    {"kind": "batch", "patches": [{"kind": "remove_tool", "node_id": "x", "tool_name": "y"}]},
]


def test_every_kind_has_a_wire_name() -> None:
    assert sorted(PATCH_KINDS) == sorted(p["kind"] for p in EVERY_KIND)
    assert len(PATCH_KINDS) == 11


@pytest.mark.parametrize("data", EVERY_KIND, ids=lambda d: str(d["kind"]))
def test_a_parsed_patch_serialises_completely_and_replays_identically(data: dict[str, Any]) -> None:
    patch = parse_patch(data)
    wire = patch_to_json(patch)

    assert wire["kind"] == data["kind"]
    assert parse_patch(json.dumps(wire)) == patch
    assert patch_to_json(parse_patch(wire)) == wire


def test_parsing_fills_generated_ids_once_so_applying_is_deterministic() -> None:
    patch = parse_patch(EVERY_KIND[0])
    genome = nested()

    assert isinstance(patch, AddChild)
    assert len(patch.child.id) == 36
    assert apply_patch(genome, patch) == apply_patch(genome, patch)
    assert patch_to_json(patch)["child"]["id"] == patch.child.id  # type: ignore[call-overload,index]


def test_parsing_fills_the_extracted_child_component_and_channel_ids() -> None:
    promote = parse_patch(EVERY_KIND[1])
    channel = parse_patch(EVERY_KIND[3])
    component = parse_patch(EVERY_KIND[5])

    assert isinstance(promote, PromoteLeafToMetasystem) and len(promote.extracted_child_id) == 36
    assert isinstance(channel, AddChannel) and len(channel.channel.id) == 36
    assert isinstance(component, AddPromptComponent) and len(component.component.id) == 36
    assert component.section is PromptSection.NEGATIVE_CONSTRAINTS
    genome = nested()
    assert apply_patch(genome, promote) == apply_patch(genome, promote)


def test_parsing_gives_the_typed_patch_objects() -> None:
    parsed = [parse_patch(data) for data in EVERY_KIND]

    assert [type(p) for p in parsed] == [
        AddChild,
        PromoteLeafToMetasystem,
        RemoveSubtree,
        AddChannel,
        RemoveChannel,
        AddPromptComponent,
        RemovePromptComponent,
        AddTool,
        RemoveTool,
        SetNodeStatus,
        Batch,
    ]
    status = parsed[9]
    assert isinstance(status, SetNodeStatus) and status.status is NodeLifecycleStatus.PROBATION


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"kind": "teleport"},
            (
                'kind: unknown kind "teleport"; expected one of add_child, '
                "promote_leaf_to_metasystem, remove_subtree"
            ),
        ),
        ({"node_id": "x"}, 'missing "kind"; expected one of add_child'),
        ([], "expected "),
        ({"kind": "remove_subtree"}, "node_id: required field of RemoveSubtree is missing"),
        (
            {"kind": "set_node_status", "node_id": "x", "status": "Asleep"},
            'status: unknown NodeLifecycleStatus "Asleep"',
        ),
        (
            {"kind": "remove_subtree", "node_id": "x", "force": True},
            "force: unknown field of RemoveSubtree",
        ),
        (
            {
                "kind": "batch",
                "patches": [{"kind": "remove_subtree", "node_id": "a"}, {"kind": "x"}],
            },
            'patches[1].kind: unknown kind "x"',
        ),
        (
            {"kind": "add_child", "parent_id": "p", "child": {"name": "c", "status": 3}},
            "child.status: unknown NodeLifecycleStatus 3",
        ),
        (
            {"kind": "add_tool", "node_id": "n", "tool": {"name": "t", "enabled": "yes"}},
            'tool.enabled: expected a boolean, got "yes"',
        ),
        ('{"kind": ', "not valid JSON"),
    ],
)
def test_it_rejects_a_malformed_patch_naming_the_path(data: object, message: str) -> None:
    with pytest.raises(GenomeFormatError) as raised:
        parse_patch(data)

    assert str(raised.value).startswith(message)
