"""The JSON wire format (docs/rules/genome.md): strict decoding, errors naming the path."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from organization.genome import (
    ChannelConfig,
    ChannelDirection,
    GenomeFormatError,
    GenomeInvalid,
    LeafKind,
    LeafOperationSpec,
    VsmChannelType,
    genome_from_json,
    genome_to_json,
    nested,
)
from organization.genome.codec import to_json_value


def nested_json() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(json.dumps(genome_to_json(nested())))
    return loaded


def test_a_genome_survives_a_json_round_trip() -> None:
    genome = nested()
    genome.metadata = {"b": "2", "a": "1"}
    genome.nodes["backend-coder"].leaf_operation.kind = LeafKind.custom("Migrations")

    assert genome_from_json(json.dumps(genome_to_json(genome))) == genome


def test_the_wire_format_uses_the_spec_field_names() -> None:
    data = genome_to_json(nested())

    assert list(data) == ["id", "root_node_id", "nodes", "channels", "lineage", "metadata"]
    coder = nested_json()["nodes"]["backend-coder"]
    assert set(coder) == {
        "id",
        "parent_id",
        "name",
        "system_5",
        "system_4",
        "system_3",
        "system_3_star",
        "children",
        "leaf_operation",
        "model",
        "prompt",
        "tools",
        "context_policy",
        "permissions",
        "channels",
        "age_epochs",
        "status",
        "metadata",
    }
    assert coder["leaf_operation"]["kind"] == "Coding"
    assert coder["status"] == "Active"
    assert data["lineage"] == {
        "parent_genome_ids": [],
        "mutation_ids": [],
        "created_at_unix_ms": None,
    }


def test_channel_endpoints_travel_as_from_and_to() -> None:
    channel = nested_json()["channels"][4]

    assert channel["channel_type"] == "Algedonic"
    assert channel["from"] == "backend-system" and channel["to"] == "root-codebase-system"
    assert channel["priority"] == "Normal"


def test_a_custom_leaf_kind_serialises_as_a_one_key_object() -> None:
    spec = LeafOperationSpec(kind=LeafKind.custom("Migrations"))
    genome = nested()
    genome.nodes["backend-coder"].leaf_operation = spec

    assert genome_to_json(genome)["nodes"]["backend-coder"]["leaf_operation"]["kind"] == {  # type: ignore[call-overload,index]
        "Custom": "Migrations"
    }


def test_metadata_is_written_sorted_by_key() -> None:
    genome = nested()
    genome.metadata = {"zeta": "1", "alpha": "2", "mid": "3"}

    assert list(genome_to_json(genome)["metadata"]) == ["alpha", "mid", "zeta"]  # type: ignore[arg-type]


def test_missing_optional_fields_take_their_defaults() -> None:
    genome = genome_from_json(
        {
            "id": "g",
            "root_node_id": "r",
            "nodes": {"r": {"id": "r", "name": "root"}},
        }
    )

    assert genome.nodes["r"].system_5.identity == "unclassified viable node"
    assert genome.nodes["r"].system_3_star.audit_window_tasks == 50
    assert genome.channels == [] and genome.metadata == {}


def test_a_channel_without_an_id_gets_a_fresh_one() -> None:
    data = nested_json()
    del data["channels"][0]["id"]

    first = genome_from_json(data).channels[0].id
    second = genome_from_json(data).channels[0].id

    assert first != second and len(first) == 36


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (
            ("nodes", "backend-coder", "leaf_operation", "allows_code_write"),
            "yes",
            'nodes.backend-coder.leaf_operation.allows_code_write: expected a boolean, got "yes"',
        ),
        (
            ("nodes", "backend-coder", "status"),
            "Sleeping",
            (
                'nodes.backend-coder.status: unknown NodeLifecycleStatus "Sleeping"; '
                "expected one of Shadow, Probation, Active, Retired"
            ),
        ),
        (
            ("nodes", "backend-coder", "age_epochs"),
            -1,
            "nodes.backend-coder.age_epochs: expected a non-negative integer, got -1",
        ),
        (
            ("nodes", "backend-coder", "age_epochs"),
            True,
            "nodes.backend-coder.age_epochs: expected a non-negative integer, got true",
        ),
        (
            ("nodes", "backend-coder", "model", "max_context_tokens"),
            "lots",
            (
                "nodes.backend-coder.model.max_context_tokens: "
                'expected a non-negative integer or null, got "lots"'
            ),
        ),
        (
            ("nodes", "backend-coder", "metadata"),
            {"retries": 3},
            "nodes.backend-coder.metadata.retries: expected a string, got 3",
        ),
        (
            ("nodes", "backend-coder", "children"),
            "none",
            'nodes.backend-coder.children: expected a list, got "none"',
        ),
        (
            ("channels",),
            [{"channel_type": "Telepathy", "direction": "Bidirectional"}],
            'channels[0].channel_type: unknown VsmChannelType "Telepathy"; expected one of',
        ),
        (
            ("nodes", "backend-coder", "leaf_operation", "kind"),
            {"Custom": 7},
            "nodes.backend-coder.leaf_operation.kind.Custom: expected a string, got 7",
        ),
        (
            ("nodes", "backend-coder", "leaf_operation", "kind"),
            "Painting",
            'nodes.backend-coder.leaf_operation.kind: unknown LeafKind "Painting"',
        ),
        (
            ("nodes", "backend-coder", "prompt", "behavior_rules"),
            [{"text": "ok"}, {"text": 5}],
            "nodes.backend-coder.prompt.behavior_rules[1].text: expected a string, got 5",
        ),
    ],
)
def test_it_rejects_malformed_json_naming_the_path(
    path: tuple[str, ...], value: object, message: str
) -> None:
    data = nested_json()
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value

    with pytest.raises(GenomeFormatError) as raised:
        genome_from_json(data)

    assert str(raised.value).startswith(message)


def test_it_rejects_an_unknown_field_and_suggests_the_right_one() -> None:
    data = nested_json()
    data["nodes"]["backend-coder"]["nmae"] = "typo"

    with pytest.raises(GenomeFormatError, match=r"nodes\.backend-coder\.nmae: unknown field"):
        genome_from_json(data)
    with pytest.raises(GenomeFormatError, match="did you mean 'name'"):
        genome_from_json(data)


def test_it_rejects_a_missing_required_field() -> None:
    data = nested_json()
    del data["nodes"]["backend-coder"]["name"]

    with pytest.raises(GenomeFormatError) as raised:
        genome_from_json(data)

    assert raised.value.path == "nodes.backend-coder.name"
    assert "required field of ViableNode is missing" in str(raised.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [("{not json", "not valid JSON"), ("[1, 2]", "expected an object (OrganizationalGenome)")],
)
def test_it_rejects_text_that_is_not_a_genome_object(text: str, message: str) -> None:
    with pytest.raises(GenomeFormatError, match=re.escape(message)):
        genome_from_json(text)


def test_decoding_checks_the_structure_unless_told_not_to() -> None:
    data = nested_json()
    data["root_node_id"] = "nobody"

    with pytest.raises(GenomeInvalid, match="root node 'nobody' is missing from nodes"):
        genome_from_json(data)
    assert genome_from_json(data, check=False).root_node_id == "nobody"


def test_encoding_refuses_a_wrongly_typed_field_set_in_python() -> None:
    genome = nested()
    genome.nodes["backend-coder"].metadata["retries"] = 3  # type: ignore[assignment]

    with pytest.raises(GenomeFormatError, match=r"nodes\.backend-coder\.metadata\.retries"):
        genome_to_json(genome)


def test_enum_values_given_as_plain_strings_encode_like_members() -> None:
    channel = ChannelConfig(
        channel_type="Audit",  # type: ignore[arg-type]
        direction=ChannelDirection.BIDIRECTIONAL,
    )

    assert to_json_value(channel)["channel_type"] == VsmChannelType.AUDIT  # type: ignore[call-overload,index]
