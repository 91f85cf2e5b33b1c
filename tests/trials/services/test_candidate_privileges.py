"""A candidate genome never gets settings only an admin may give (genome.privileges)."""

from __future__ import annotations

import pytest

from organization.genome import JsonObject, LeafOperationSpec, ModelSpec, ViableNode, patch_to_json
from organization.genome.patches import AddChild
from organization.models import GenomeVersion
from organization.selectors import genome_version
from organization.services import genome_apply_patch, genome_bootstrap
from trials.errors import SuggestionRefused
from trials.models import Trial
from trials.services.candidates import suggestion_queue

ROOT = "root-codebase-system"


def leaf(name: str, provider: str = "echo", **metadata: str) -> ViableNode:
    node = ViableNode.leaf(name, LeafOperationSpec.reviewer(), id=name)
    node.model = ModelSpec(provider=provider, model="unbound")
    node.metadata = dict(metadata)
    return node


def add(node: ViableNode) -> JsonObject:
    return patch_to_json(AddChild(parent_id=ROOT, child=node))


@pytest.mark.django_db
def test_a_suggestion_that_would_add_a_command_node_is_refused_and_stores_nothing(make_draft):
    genome_bootstrap(template="single", actor="test")
    versions = GenomeVersion.objects.count()
    draft = make_draft()
    draft.patch = add(leaf("shell", provider="command", **{"provider.command.argv": "sh -c id"}))

    with pytest.raises(SuggestionRefused) as refused:
        suggestion_queue(draft=draft, actor="node:root-codebase-system")

    (message,) = refused.value.errors["patch"]
    assert "only an admin may give a node the command provider" in message
    assert "genome_patch" in message
    assert GenomeVersion.objects.count() == versions
    assert not Trial.objects.exists()


@pytest.mark.django_db
def test_an_admin_may_still_patch_the_champion_with_a_command_node():
    genome_bootstrap(template="single", actor="test")

    version = genome_apply_patch(patch=add(leaf("shell", provider="command")), actor="cli:root")

    assert "shell" in genome_version(version_id=version.id).nodes
