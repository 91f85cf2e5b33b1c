"""Changing the champion genome: all of it in one transaction, or nothing."""

from __future__ import annotations

import pytest

from ledger import kinds
from ledger.models import LedgerEvent
from ledger.selectors import ledger_verify
from organization.genome import (
    CannotRemoveRoot,
    GenomeFormatError,
    NodeNotFound,
    content_hash,
    genome_from_json,
    nested,
)
from organization.models import ChampionPointer, GenomeVersion, Node
from organization.selectors import champion_version, node_subtree
from organization.services import (
    ChampionMissing,
    UnknownTemplate,
    genome_apply_patch,
    genome_bootstrap,
    genome_bootstrap_from,
)

pytestmark = pytest.mark.django_db

PROMOTE_CODER = {
    "kind": "promote_leaf_to_metasystem",
    "node_id": "backend-coder",
    "extracted_child_name": "generalist-coder",
    "extracted_child_id": "generalist-coder",
}


def snapshot() -> tuple[object, ...]:
    """Everything a patch may touch, to compare before and after a refusal."""
    return (
        list(GenomeVersion.objects.order_by("created_at").values_list("id", "content_hash")),
        list(ChampionPointer.objects.values_list("controller_node_id", "version_id")),
        list(
            Node.objects.order_by("position").values_list(
                "id", "kind", "capabilities", "version_id"
            )
        ),
        list(LedgerEvent.objects.values_list("seq", "hash")),
    )


def test_bootstrap_creates_the_nested_organization_and_records_it() -> None:
    version, created = genome_bootstrap(template="nested", actor="operator:test")

    assert created is True
    assert version.content_hash == content_hash(nested())
    assert list(Node.objects.values_list("id", "parent_id", "depth", "kind")) == [
        ("root-codebase-system", None, 0, "metasystem"),
        ("backend-system", "root-codebase-system", 1, "metasystem"),
        ("backend-coder", "backend-system", 2, "leaf"),
    ]
    coder = Node.objects.get(id="backend-coder")
    assert coder.ancestor_ids == ["backend-system", "root-codebase-system"]
    assert "write_code" in coder.capabilities
    assert "write_code" not in Node.objects.get(id="backend-system").capabilities
    event = LedgerEvent.objects.get()
    assert (event.kind, event.actor, event.genome_id) == (
        kinds.GENOME_BOOTSTRAPPED,
        "operator:test",
        version.id,
    )


def test_bootstrap_is_idempotent_whatever_the_template() -> None:
    first, _ = genome_bootstrap(template="single", actor="operator:test")
    before = snapshot()

    again, created = genome_bootstrap(template="nested", actor="operator:test")

    assert created is False
    assert again == first
    assert snapshot() == before


def test_bootstrap_rejects_an_unknown_template() -> None:
    with pytest.raises(
        UnknownTemplate, match="unknown template 'huge'; choose one of: nested, single"
    ):
        genome_bootstrap(template="huge", actor="operator:test")
    assert GenomeVersion.objects.count() == 0


def test_applying_a_patch_stores_a_new_version_moves_the_champion_and_records_it() -> None:
    base, _ = genome_bootstrap(template="nested", actor="operator:test")

    version = genome_apply_patch(patch=PROMOTE_CODER, actor="operator:alice", reason="split coder")

    assert version.parent == base
    assert version.patch == {**PROMOTE_CODER}
    assert version.content_hash != base.content_hash
    assert champion_version() == version
    stored = genome_from_json(version.genome)
    assert content_hash(stored) == version.content_hash
    assert stored.id == version.id
    assert stored.lineage.parent_genome_ids == [base.id]
    event = LedgerEvent.objects.filter(kind=kinds.GENOME_PATCH_APPLIED).get()
    assert event.actor == "operator:alice"
    assert event.payload["previous_version_id"] == base.id
    assert event.payload["content_hash"] == version.content_hash
    assert event.payload["patch"]["kind"] == "promote_leaf_to_metasystem"
    assert ledger_verify() == (2, None)


def test_promoting_a_leaf_moves_execution_rights_in_the_materialised_nodes() -> None:
    genome_bootstrap(template="nested", actor="operator:test")

    genome_apply_patch(patch=PROMOTE_CODER, actor="operator:test")

    promoted = Node.objects.get(id="backend-coder")
    extracted = Node.objects.get(id="generalist-coder")
    assert promoted.kind == "metasystem" and "write_code" not in promoted.capabilities
    assert extracted.kind == "leaf" and "write_code" in extracted.capabilities
    assert extracted.ancestor_ids == ["backend-coder", "backend-system", "root-codebase-system"]
    assert [node.id for node in node_subtree(node_id="backend-system")] == [
        "backend-system",
        "backend-coder",
        "generalist-coder",
    ]


def test_removing_a_subtree_removes_its_node_rows() -> None:
    genome_bootstrap(template="nested", actor="operator:test")

    genome_apply_patch(
        patch={"kind": "remove_subtree", "node_id": "backend-system"}, actor="operator:test"
    )

    assert list(Node.objects.values_list("id", flat=True)) == ["root-codebase-system"]
    assert Node.objects.get().kind == "leaf"


@pytest.mark.parametrize(
    ("patch", "error", "message"),
    [
        (
            {"kind": "remove_subtree", "node_id": "root-codebase-system"},
            CannotRemoveRoot,
            "cannot be removed",
        ),
        (
            {"kind": "set_node_status", "node_id": "ghost", "status": "Retired"},
            NodeNotFound,
            "ghost",
        ),
        (
            {"kind": "set_node_status", "node_id": "backend-coder", "status": "Sleeping"},
            GenomeFormatError,
            "status",
        ),
        ({"kind": "teleport"}, GenomeFormatError, "unknown kind"),
        (
            {
                "kind": "batch",
                "patches": [
                    {"kind": "set_node_status", "node_id": "backend-coder", "status": "Retired"},
                    {"kind": "remove_subtree", "node_id": "ghost"},
                ],
            },
            NodeNotFound,
            "ghost",
        ),
    ],
)
def test_a_refused_patch_changes_nothing(
    patch: dict[str, object], error: type[Exception], message: str
) -> None:
    genome_bootstrap(template="nested", actor="operator:test")
    before = snapshot()

    with pytest.raises(error, match=message):
        genome_apply_patch(patch=patch, actor="operator:test")

    assert snapshot() == before


def test_patching_before_bootstrap_says_what_to_do() -> None:
    with pytest.raises(ChampionMissing, match=r"run `python manage\.py org_bootstrap` first"):
        genome_apply_patch(patch=PROMOTE_CODER, actor="operator:test")


def test_stored_versions_are_immutable() -> None:
    version, _ = genome_bootstrap(template="single", actor="operator:test")
    version.actor = "mallory"

    with pytest.raises(Exception, match="immutable"):
        version.save()
    with pytest.raises(Exception, match="immutable"):
        version.delete()
    assert GenomeVersion.objects.get().actor == "operator:test"


def test_on_postgresql_versions_are_stored_as_json_text_compressed_with_lz4() -> None:
    """A patch at 1,000 nodes and more is mostly its version's INSERT, and lz4 halves that
    INSERT's compression (docs/performance.md, "Scale"). A genome big enough to be TOASTed
    comes back whole."""
    from django.db import connection

    from tests.support.organizations import wide_genome

    if connection.vendor != "postgresql":
        pytest.skip("column compression exists on PostgreSQL only")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
        )
        if not cursor.fetchone()[0]:
            pytest.skip("this PostgreSQL was built without lz4")
    base, _ = genome_bootstrap_from(
        genome=wide_genome(units=3, leaves_per_unit=20), actor="operator:test", label="wide"
    )
    version = genome_apply_patch(
        patch={"kind": "set_node_status", "node_id": "unit-2-leaf-19", "status": "Probation"},
        actor="operator:test",
    )

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT format_type(atttypid, atttypmod), attcompression FROM pg_attribute"
            " WHERE attrelid = 'organization_genomeversion'::regclass AND attname = 'genome'"
        )
        assert cursor.fetchone() == ("json", "l")
        cursor.execute(
            "SELECT pg_column_compression(genome) FROM organization_genomeversion WHERE id = %s",
            [version.id],
        )
        assert cursor.fetchone()[0] == "lz4"
    stored = GenomeVersion.objects.get(pk=version.id)
    assert content_hash(genome_from_json(stored.genome)) == version.content_hash
    assert len(genome_from_json(stored.genome).nodes) == len(
        genome_from_json(GenomeVersion.objects.get(pk=base.id).genome).nodes
    )
