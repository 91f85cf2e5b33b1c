"""The Node rows mirror the champion exactly, and a patch rewrites only the rows it changes."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from organization.genome import (
    GenomeError,
    JsonValue,
    OrganizationalGenome,
    ancestor_ids,
    canonical_json,
    capability_names,
    derive_capabilities,
    fan_out_organization,
    genome_to_json,
    patch_to_json,
    subtree_ids,
)
from organization.models import Node
from organization.selectors import champion_genome
from organization.services import genome_apply_patch, genome_bootstrap_from
from tests.organization.strategies import genomes, patches_for

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.slow,
]  # property tests and thousand-node organizations

NODE_WRITES = ("INSERT INTO", "UPDATE", "DELETE FROM")


def node_writes(queries: CaptureQueriesContext) -> list[str]:
    return [
        query["sql"]
        for query in queries.captured_queries
        if query["sql"].startswith(NODE_WRITES) and '"organization_node"' in query["sql"]
    ]


def expected_rows(genome: OrganizationalGenome) -> dict[str, tuple[Any, ...]]:
    """What the rows must say, derived from scratch for every node of ``genome``."""
    order = subtree_ids(genome, genome.root_node_id)
    rows = {}
    for node_id, node in genome.nodes.items():
        leaf_kind = node.leaf_operation.kind
        rows[node_id] = (
            node.name,
            node.parent_id,
            len(ancestor_ids(genome, node_id)),
            order.index(node_id),
            ancestor_ids(genome, node_id),
            "metasystem" if node.children else "leaf",
            node.status.value,
            "" if node.children or leaf_kind is None else str(leaf_kind),
            capability_names(derive_capabilities(genome, node_id)),
            node.model.provider,
            node.model.model,
        )
    return rows


def stored_rows() -> dict[str, tuple[Any, ...]]:
    columns = ["name", "parent_id", "depth", "position", "ancestor_ids", "kind", "status"]
    columns += ["leaf_kind", "capabilities", "model_provider", "model_name"]
    return {row[0]: row[1:] for row in Node.objects.values_list("id", *columns)}


def test_a_status_change_in_a_thousand_node_organization_rewrites_one_node_row() -> None:
    genome_bootstrap_from(genome=fan_out_organization(1_000), actor="operator:test", label="big")

    with CaptureQueriesContext(connection) as queries:
        version = genome_apply_patch(
            patch={"kind": "set_node_status", "node_id": "n-500", "status": "Retired"},
            actor="operator:test",
        )

    assert len(node_writes(queries)) == 1
    assert list(Node.objects.filter(version=version).values_list("id", "status")) == [
        ("n-500", "Retired")
    ]


def test_adding_a_leaf_to_a_large_organization_inserts_its_row_and_leaves_earlier_rows_alone() -> (
    None
):
    genome_bootstrap_from(genome=fan_out_organization(1_000), actor="operator:test", label="big")
    last = Node.objects.order_by("-position").values_list("id", flat=True)[0]
    parent = Node.objects.get(id=last).parent_id

    version = genome_apply_patch(
        patch={"kind": "add_child", "parent_id": parent, "child": {"id": "new", "name": "new"}},
        actor="operator:test",
    )

    assert set(Node.objects.filter(version=version).values_list("id", flat=True)) == {"new"}
    assert Node.objects.count() == 1_001
    assert stored_rows() == expected_rows(champion())


def storable(value: JsonValue) -> bool:
    """PostgreSQL cannot store NUL in text or jsonb; the random strategies draw it."""
    return "\\u0000" not in canonical_json(value)


def champion() -> OrganizationalGenome:
    genome = champion_genome()
    assert genome is not None
    return genome


# A random genome has dozens of texts and Hypothesis likes NUL, so most genomes it draws
# cannot be stored on PostgreSQL and are assumed away: expected filtering, not a slow strategy
# (the health check failed a CI run with 9 of 59 genomes storable).
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(st.data())
def test_node_rows_mirror_the_champion_after_every_kind_of_patch(data: st.DataObject) -> None:
    with transaction.atomic():
        genome = data.draw(genomes(max_nodes=6))
        assume(storable(genome_to_json(genome)))
        genome_bootstrap_from(genome=genome, actor="operator:test", label="random")
        assert stored_rows() == expected_rows(champion())
        for _ in range(data.draw(st.integers(1, 5))):
            patch = data.draw(patches_for(champion()))
            if not storable(patch_to_json(patch)):
                continue
            with contextlib.suppress(GenomeError):  # a refusal must leave the rows as they were
                genome_apply_patch(patch=patch, actor="operator:test")
            assert stored_rows() == expected_rows(champion())
        transaction.set_rollback(True)
