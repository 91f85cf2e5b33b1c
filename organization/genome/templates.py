"""Stock genomes (docs/rules/genome.md); node ids equal node names so they read well in traces."""

from __future__ import annotations

from collections.abc import Callable

from organization.genome.model import (
    LeafOperationSpec,
    ModelSpec,
    OrganizationalGenome,
    ViableNode,
)
from organization.genome.operations import add_child
from organization.genome.validation import validate

ROOT_NODE_ID = "root-codebase-system"
ROOT_IDENTITY = "Autonomous coding organization root"
ECHO_MODEL = ("echo", "local-echo")


def _root() -> ViableNode:
    root = ViableNode.metasystem(ROOT_NODE_ID, id=ROOT_NODE_ID)
    root.system_5.identity = ROOT_IDENTITY
    return root


def _coding_leaf(name: str, identity: str) -> ViableNode:
    leaf = ViableNode.leaf(name, LeafOperationSpec.coding(), id=name)
    leaf.system_5.identity = identity
    provider, model = ECHO_MODEL
    leaf.model = ModelSpec(provider=provider, model=model)
    return leaf


def single_coder() -> OrganizationalGenome:
    """``root-codebase-system`` managing one coding leaf, ``primary-code-service``."""
    genome = OrganizationalGenome.from_root(_root())
    add_child(
        genome,
        ROOT_NODE_ID,
        _coding_leaf("primary-code-service", "General coding leaf under the root VSM."),
    )
    validate(genome)
    return genome


def nested() -> OrganizationalGenome:
    """``root-codebase-system`` → metasystem ``backend-system`` → coding leaf ``backend-coder``."""
    genome = OrganizationalGenome.from_root(_root())
    backend = ViableNode.metasystem("backend-system", id="backend-system")
    backend.system_5.identity = "Backend viable subsystem."
    add_child(genome, ROOT_NODE_ID, backend)
    add_child(genome, "backend-system", _coding_leaf("backend-coder", "Backend coding leaf."))
    validate(genome)
    return genome


TEMPLATES: dict[str, Callable[[], OrganizationalGenome]] = {
    "single": single_coder,
    "nested": nested,
}
