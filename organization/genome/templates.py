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


FAN_OUT = 10


def fan_out_organization(size: int, *, fan_out: int = FAN_OUT) -> OrganizationalGenome:
    """A valid genome of exactly ``size`` nodes, filled breadth first, ``fan_out`` per parent.

    Node ``n-<i>`` (``i`` from 1; the root keeps its usual id) hangs under node
    ``(i - 1) // fan_out``, so every level is full before the next begins and the depth
    is about log(size) / log(fan_out). Nodes that end up with children are metasystems
    (empty leaf spec); every other node is a coding leaf on the echo model, so a
    ``requires_code_write`` directive can reach any of them. For benches and tests of
    size, not a stock template (it is not in ``TEMPLATES``).
    """
    if size < 1 or fan_out < 1:
        raise ValueError(f"an organization needs size >= 1 and fan_out >= 1, got {size}, {fan_out}")
    ids = [ROOT_NODE_ID, *(f"n-{index}" for index in range(1, size))]
    has_children = {ids[(index - 1) // fan_out] for index in range(1, size)}
    genome = OrganizationalGenome.from_root(_root())
    for index in range(1, size):
        node_id = ids[index]
        if node_id in has_children:
            node = ViableNode.metasystem(node_id, id=node_id)
            node.system_5.identity = f"Metasystem {node_id}."
        else:
            node = _coding_leaf(node_id, f"Coding leaf {node_id}.")
        add_child(genome, ids[(index - 1) // fan_out], node)
    validate(genome)
    return genome


TEMPLATES: dict[str, Callable[[], OrganizationalGenome]] = {
    "single": single_coder,
    "nested": nested,
}
