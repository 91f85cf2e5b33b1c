"""Only an admin gives a node the command provider or loosens its sandbox; a candidate never."""

from __future__ import annotations

import copy

import pytest

from organization.genome import (
    AdminOnlySettings,
    JsonObject,
    LeafOperationSpec,
    ModelSpec,
    NodeLifecycleStatus,
    ViableNode,
    apply_patch,
    parse_patch,
    patch_to_json,
    single_coder,
)
from organization.genome.patches import AddChild, SetNodeStatus
from organization.genome.privileges import privilege_escalations

ROOT = "root-codebase-system"
CODER = "primary-code-service"


def leaf(name: str, provider: str = "echo", **metadata: str) -> ViableNode:
    node = ViableNode.leaf(name, LeafOperationSpec.reviewer(), id=name)
    node.model = ModelSpec(provider=provider, model="unbound")
    node.metadata = dict(metadata)
    return node


def add(node: ViableNode) -> JsonObject:
    return patch_to_json(AddChild(parent_id=ROOT, child=node))


@pytest.mark.parametrize(
    ("child", "escalation"),
    [
        (leaf("shell", provider="command"), "model.provider='command'"),
        (leaf("wrapped", provider="replay", **{"provider.replay.wrapped": "command"}), "wrapped"),
        (leaf("secrets", **{"provider.command.env": "DATABASE_URL"}), "provider.command.env"),
        (leaf("online", **{"sandbox.network": "on"}), "sandbox.network='on'"),
    ],
)
def test_a_new_node_with_an_admin_only_setting_is_an_escalation(child, escalation):
    before = single_coder()
    after = apply_patch(before, parse_patch(add(child)))

    (problem,) = privilege_escalations(before, after)
    assert child.id in problem and escalation in problem


def test_ordinary_nodes_and_changes_away_from_admin_settings_are_not_escalations():
    before = single_coder()
    armed = copy.deepcopy(before)
    armed.nodes[CODER].model = ModelSpec(provider="command", model="codex")
    armed.nodes[CODER].metadata = {"provider.command.preset": "codex", "sandbox.network": "on"}

    assert privilege_escalations(before, apply_patch(before, parse_patch(add(leaf("r"))))) == []
    # Keeping an admin's settings, or dropping them, needs no admin.
    retired = apply_patch(armed, SetNodeStatus(node_id=CODER, status=NodeLifecycleStatus.RETIRED))
    assert privilege_escalations(armed, retired) == []
    assert privilege_escalations(armed, before) == []
    # Changing one does.
    changed = copy.deepcopy(armed)
    changed.nodes[CODER].metadata = {**armed.nodes[CODER].metadata, "sandbox.network": "off"}
    assert privilege_escalations(armed, changed) == [
        f"node {CODER!r} would get sandbox.network='off'"
    ]


def test_the_error_names_every_escalation():
    error = AdminOnlySettings(["node 'a' would get x='1'", "node 'b' would get y='2'"])

    assert "node 'a'" in str(error) and "node 'b'" in str(error)
