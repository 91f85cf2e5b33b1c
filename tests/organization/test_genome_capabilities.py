"""Capabilities come from structure and the leaf spec only (docs/rules/genome.md)."""

from __future__ import annotations

import pytest

from organization.genome import (
    AddChild,
    AddPromptComponent,
    LeafOperationSpec,
    PromoteLeafToMetasystem,
    PromptComponent,
    PromptSection,
    RuntimeCapabilities,
    ViableNode,
    apply_patch,
    capability_allows,
    capability_names,
    derive_capabilities,
    single_coder,
)

MANAGEMENT = [
    "allocate_resources",
    "audit_children",
    "coordinate",
    "delegate",
    "issue_command",
    "mutate_child_topology",
    "run_future_probes",
]


def test_a_coding_leaf_may_write_code_and_holds_no_management_power() -> None:
    caps = derive_capabilities(single_coder(), "primary-code-service")

    assert caps.can_write_code and caps.can_run_tests and caps.can_write_filesystem
    assert not caps.can_review and not caps.can_integrate
    assert not caps.can_delegate and not caps.can_allocate_resources
    assert capability_names(caps) == [
        "read_filesystem",
        "research",
        "run_tests",
        "write_code",
        "write_filesystem",
    ]


def test_a_metasystem_manages_and_never_writes_code_whatever_its_leaf_spec() -> None:
    manager = ViableNode.leaf("manager", LeafOperationSpec.coding())
    manager.children.append("someone")

    caps = derive_capabilities(manager)

    assert not caps.can_write_code and not caps.can_run_tests and not caps.can_review
    assert not caps.can_write_filesystem
    assert caps.can_research and caps.can_integrate and caps.can_read_filesystem
    assert capability_names(caps) == sorted(
        ["integrate", "read_filesystem", "research", *MANAGEMENT]
    )


def test_adding_a_child_to_a_leaf_removes_its_code_writing_authority() -> None:
    genome = single_coder()
    assert derive_capabilities(genome, "primary-code-service").can_write_code

    grown = apply_patch(
        genome,
        AddChild(
            parent_id="primary-code-service",
            child=ViableNode.leaf("helper", LeafOperationSpec.tester(), id="helper"),
        ),
    )

    assert not derive_capabilities(grown, "primary-code-service").can_write_code
    assert derive_capabilities(grown, "primary-code-service").can_delegate


def test_promotion_moves_execution_rights_to_the_extracted_child() -> None:
    promoted = apply_patch(
        single_coder(),
        PromoteLeafToMetasystem(
            node_id="primary-code-service", extracted_child_name="worker", extracted_child_id="w"
        ),
    )

    assert not derive_capabilities(promoted, "primary-code-service").can_write_code
    assert derive_capabilities(promoted, "w").can_write_code


def test_a_prompt_cannot_grant_a_capability() -> None:
    genome = single_coder()
    genome = apply_patch(
        genome,
        AddPromptComponent(
            node_id=genome.root_node_id,
            section=PromptSection.BEHAVIOR_RULES,
            component=PromptComponent(text="You are allowed to write code directly."),
        ),
    )

    assert not derive_capabilities(genome, genome.root_node_id).can_write_code


@pytest.mark.parametrize(
    ("name", "field"),
    [
        ("write_code", "can_write_code"),
        ("run_tests", "can_run_tests"),
        ("review", "can_review"),
        ("research", "can_research"),
        ("integrate", "can_integrate"),
        ("read_filesystem", "can_read_filesystem"),
        ("write_filesystem", "can_write_filesystem"),
    ],
)
def test_a_required_capability_name_maps_to_its_flag(name: str, field: str) -> None:
    assert capability_allows(RuntimeCapabilities(**{field: True}), name)
    assert not capability_allows(RuntimeCapabilities(), name)


def test_an_unknown_capability_name_is_allowed() -> None:
    assert capability_allows(RuntimeCapabilities(), "juggle")
    assert capability_allows(RuntimeCapabilities(), "delegate")


def test_derive_capabilities_needs_a_node_id_with_a_genome() -> None:
    with pytest.raises(TypeError, match="needs a node id"):
        derive_capabilities(single_coder())  # type: ignore[call-overload]
