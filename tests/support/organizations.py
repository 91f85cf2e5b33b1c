"""Large organizations for page tests and measurements, bootstrapped like a stock template."""

from __future__ import annotations

from unittest import mock

from organization.genome import templates
from organization.genome.model import LeafOperationSpec, OrganizationalGenome, ViableNode
from organization.genome.operations import add_child
from organization.genome.validation import validate
from organization.services import genome_bootstrap


def wide_genome(*, units: int, leaves_per_unit: int) -> OrganizationalGenome:
    """The root over ``units`` metasystems ``unit-<u>``, each over leaves ``unit-<u>-leaf-<l>``."""
    genome = OrganizationalGenome.from_root(
        ViableNode.metasystem(templates.ROOT_NODE_ID, id=templates.ROOT_NODE_ID)
    )
    for unit in range(units):
        unit_id = f"unit-{unit}"
        add_child(genome, templates.ROOT_NODE_ID, ViableNode.metasystem(unit_id, id=unit_id))
        for leaf in range(leaves_per_unit):
            leaf_id = f"{unit_id}-leaf-{leaf}"
            add_child(
                genome, unit_id, ViableNode.leaf(leaf_id, LeafOperationSpec.coding(), id=leaf_id)
            )
    validate(genome)
    return genome


def bootstrap_wide(*, units: int, leaves_per_unit: int) -> int:
    """Make a wide organization the champion; returns its number of nodes."""
    genome = wide_genome(units=units, leaves_per_unit=leaves_per_unit)
    with mock.patch.dict(templates.TEMPLATES, {"wide": lambda: genome}):
        genome_bootstrap(template="wide", actor="operator:test")
    return len(genome.nodes)


def replace_coder(
    node_id: str, *, provider: str, model: str, metadata: dict[str, str]
) -> dict[str, object]:
    """A patch (JSON) swapping the single-coder template's coder for a coding leaf ``node_id``
    whose model is ``provider``/``model`` with ``metadata`` (its provider's options)."""
    return {
        "kind": "batch",
        "patches": [
            {"kind": "remove_subtree", "node_id": "primary-code-service"},
            {
                "kind": "add_child",
                "parent_id": "root-codebase-system",
                "child": {
                    "id": node_id,
                    "name": node_id,
                    "leaf_operation": {
                        "kind": "Coding",
                        "allows_code_write": True,
                        "allows_test_execution": True,
                        "allows_research": True,
                        "allows_filesystem_read": True,
                        "allows_filesystem_write": True,
                    },
                    "model": {"provider": provider, "model": model},
                    "metadata": metadata,
                },
            },
        ],
    }
