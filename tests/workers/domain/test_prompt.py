"""The prompt a leaf's model receives (docs/rules/leaf.md, "Prompt")."""

from __future__ import annotations

import json

import pytest

from organization.genome import (
    LeafOperationSpec,
    ModelSpec,
    NodeLifecycleStatus,
    NodeNotFound,
    PermissionSpec,
    PromptComponent,
    ViableNode,
    add_child,
    single_coder,
)
from workers.domain.messages import AcceptanceCriterion, TaskPacket, to_json
from workers.domain.prompt import DEFAULT_OUTPUT_CONTRACT, build_model_request

LEAF = "primary-code-service"


@pytest.fixture
def genome():
    return single_coder()


@pytest.fixture
def task():
    return TaskPacket(
        title="Validate the limit parameter",
        goal="Reject non-numeric limits with a 400",
        scope=["api/limits.py"],
        acceptance=[AcceptanceCriterion(name="tests pass", verifier="pytest -q")],
        metadata={"requires_code_write": "true"},
    )


def test_a_plain_leaf_gets_exactly_the_reference_instructions(genome, task):
    request = build_model_request(genome, LEAF, task)

    assert request.instructions == (
        "You are an operational leaf in a recursive Viable System Model coding organization.\n"
        "You must operate only within the runtime capabilities and permissions granted to "
        "this node.\n"
        "\n"
        "# Node identity\n"
        "Node name: primary-code-service\n"
        "System 5 identity: General coding leaf under the root VSM.\n"
        "\n"
        "# Runtime capabilities\n"
        "RuntimeCapabilities(can_write_code=True, can_run_tests=True, can_review=False, "
        "can_research=True, can_integrate=False, can_read_filesystem=True, "
        "can_write_filesystem=True, can_delegate=False, can_audit_children=False, "
        "can_mutate_child_topology=False, can_issue_command=False, can_coordinate=False, "
        "can_allocate_resources=False, can_run_future_probes=False)\n"
        "\n"
        "# Permissions\n"
        "Allowed paths: []\n"
        "Denied paths: []\n"
        "Allowed tools: []\n"
        "Denied tools: []\n"
        "\n"
        "# Output contract\n"
        f"{DEFAULT_OUTPUT_CONTRACT}\n"
    )


def test_the_input_is_the_task_packet_as_pretty_json(genome, task):
    request = build_model_request(genome, LEAF, task)

    assert json.loads(request.input) == to_json(task)
    assert request.input.startswith('{\n  "id": ')


def test_the_request_carries_the_node_model_and_identifying_metadata(genome, task):
    genome.node(LEAF).model = ModelSpec(provider="openai", model="gpt-5.5-codex", effort="high")

    request = build_model_request(genome, LEAF, task)

    assert request.model == ModelSpec(provider="openai", model="gpt-5.5-codex", effort="high")
    assert request.metadata == {
        "node_id": LEAF,
        "node_name": LEAF,
        "task_id": task.id,
        "peer_leaf_kinds": "",
    }


def test_the_request_names_the_kinds_of_the_leaves_beside_the_node(genome, task):
    reviewer = ViableNode.leaf("reviewer", LeafOperationSpec.reviewer(), id="reviewer")
    add_child(genome, genome.root_node_id, reviewer)
    retired = ViableNode.leaf("old-tester", LeafOperationSpec.tester(), id="old-tester")
    retired.status = NodeLifecycleStatus.RETIRED
    add_child(genome, genome.root_node_id, retired)

    assert build_model_request(genome, LEAF, task).metadata["peer_leaf_kinds"] == "Reviewing"
    assert build_model_request(genome, "reviewer", task).metadata["peer_leaf_kinds"] == "Coding"


def test_values_constraints_and_permissions_are_listed(genome, task):
    node = genome.node(LEAF)
    node.system_5.values = ["small reviewable diffs", "tests first"]
    node.system_5.non_negotiable_constraints = ["never touch production data"]
    node.permissions = PermissionSpec(
        allowed_paths=["api/", "tests/"], denied_paths=["secrets/"], denied_tools=["curl"]
    )

    instructions = build_model_request(genome, LEAF, task).instructions

    assert (
        "Values:\n- small reviewable diffs\n- tests first\n"
        "\nNon-negotiable constraints:\n- never touch production data\n"
    ) in instructions
    assert 'Allowed paths: ["api/", "tests/"]\nDenied paths: ["secrets/"]\n' in instructions
    assert 'Allowed tools: []\nDenied tools: ["curl"]\n' in instructions


def test_only_active_prompt_genes_appear_in_their_sections(genome, task):
    prompt = genome.node(LEAF).prompt
    prompt.behavior_rules = [
        PromptComponent(text="Run the tests before answering."),
        PromptComponent(text="Retired rule that must not appear.", active=False),
    ]
    prompt.domain_hints = [PromptComponent(text="Inactive hint.", active=False)]
    prompt.codebase_conventions = [PromptComponent(text="Use pathlib, not os.path.")]
    prompt.negative_constraints = [PromptComponent(text="Do not add dependencies.")]

    instructions = build_model_request(genome, LEAF, task).instructions

    assert "\n# Behavior rules\n- Run the tests before answering.\n" in instructions
    assert "Retired rule" not in instructions
    assert "# Domain hints" not in instructions
    assert "\n# Codebase conventions\n- Use pathlib, not os.path.\n" in instructions
    assert "\n# Negative constraints\n- Do not add dependencies.\n" in instructions
    headings = [line for line in instructions.splitlines() if line.startswith("# ")]
    assert headings == [
        "# Node identity",
        "# Runtime capabilities",
        "# Permissions",
        "# Behavior rules",
        "# Codebase conventions",
        "# Negative constraints",
        "# Output contract",
    ]


def test_a_leaf_reads_the_active_behavior_rules_of_its_controllers_nearest_first(genome, task):
    """A metasystem calls no model: a rule on a controller (the evolution's parsimony
    guardrail, say) governs its subtree only through its leaves' instructions."""
    unit = ViableNode.metasystem("unit", id="unit")
    add_child(genome, genome.root_node_id, unit)
    coder = ViableNode.leaf("deep-coder", LeafOperationSpec.coding(), id="deep-coder")
    add_child(genome, "unit", coder)
    genome.node(genome.root_node_id).prompt.behavior_rules = [
        PromptComponent(text="Prefer the smallest bundle that can succeed."),
        PromptComponent(text="A retired root rule.", active=False),
        PromptComponent(text="Keep changes small."),
    ]
    unit.prompt.behavior_rules = [PromptComponent(text="Keep changes small.")]
    coder.prompt.behavior_rules = [PromptComponent(text="Run the tests before answering.")]

    instructions = build_model_request(genome, "deep-coder", task).instructions

    assert (
        "\n# Behavior rules\n- Run the tests before answering.\n"
        "\n# Behavior rules of the controllers above\n"
        "- Keep changes small.\n- Prefer the smallest bundle that can succeed.\n"
        "\n# Output contract\n"
    ) in instructions
    assert "A retired root rule." not in instructions
    # The leaf's own rule is not repeated when a controller carries the same text.
    coder.prompt.behavior_rules = [PromptComponent(text="Keep changes small.")]
    again = build_model_request(genome, "deep-coder", task).instructions
    assert again.count("Keep changes small.") == 1


def test_no_inherited_heading_when_no_controller_has_an_active_rule(genome, task):
    genome.node(genome.root_node_id).prompt.behavior_rules = [
        PromptComponent(text="Retired.", active=False)
    ]
    instructions = build_model_request(genome, LEAF, task).instructions
    assert "controllers above" not in instructions


def test_an_active_output_contract_replaces_the_default(genome, task):
    genome.node(LEAF).prompt.output_contract = PromptComponent(text="Answer with JSON only.")

    instructions = build_model_request(genome, LEAF, task).instructions

    assert instructions.endswith("# Output contract\nAnswer with JSON only.\n")
    assert DEFAULT_OUTPUT_CONTRACT not in instructions


def test_an_inactive_output_contract_falls_back_to_the_default(genome, task):
    genome.node(LEAF).prompt.output_contract = PromptComponent(
        text="Answer with JSON only.", active=False
    )

    instructions = build_model_request(genome, LEAF, task).instructions

    assert instructions.endswith(f"# Output contract\n{DEFAULT_OUTPUT_CONTRACT}\n")


def test_denied_capabilities_of_the_node_and_of_a_relayed_command_are_listed_once(genome, task):
    genome.node(LEAF).system_5.denied_capabilities = ["deploy", "network"]
    task.metadata["command_denied_capabilities"] = "network|delete_branches"

    instructions = build_model_request(genome, LEAF, task).instructions

    assert (
        "\nDenied capabilities (System 5):\n- deploy\n- network\n- delete_branches\n"
        in instructions
    )


def test_no_denied_capabilities_heading_when_there_are_none(genome, task):
    assert "Denied capabilities" not in build_model_request(genome, LEAF, task).instructions


def test_a_metasystem_is_told_it_cannot_write_code(genome, task):
    instructions = build_model_request(genome, "root-codebase-system", task).instructions

    assert "can_write_code=False" in instructions
    assert "can_delegate=True" in instructions


def test_an_unknown_node_is_refused(genome, task):
    with pytest.raises(NodeNotFound):
        build_model_request(genome, "no-such-node", task)
