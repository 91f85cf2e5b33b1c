"""The version cache freezes what it holds, so each version's channel lookups use an index."""

from __future__ import annotations

import pytest

from organization import selectors
from organization.genome import channels_between, genome_is_frozen
from organization.selectors import champion_version_id, genome_version
from organization.services import genome_apply_patch, genome_bootstrap

pytestmark = pytest.mark.django_db

ROOT, BACKEND = "root-codebase-system", "backend-system"
BUDGETED = {
    "kind": "add_channel",
    "channel": {
        "id": "budgeted",
        "channel_type": "ResourceBargaining",
        "from": BACKEND,
        "to": ROOT,
        "direction": "Bidirectional",
        "max_token_budget_per_epoch": 700,
    },
}


def test_a_patched_version_is_frozen_with_its_own_channels_and_the_base_keeps_its(
    django_capture_on_commit_callbacks,
) -> None:
    base, _ = genome_bootstrap(template="nested", actor="operator:test")
    base_genome = genome_version(version_id=base.id)
    before = [c.id for c in channels_between(base_genome, ROOT, BACKEND)]

    with django_capture_on_commit_callbacks(execute=True):  # the version enters the cache
        patched = genome_apply_patch(patch=BUDGETED, actor="operator:test")
    genome = genome_version(version_id=patched.id)

    assert genome_is_frozen(genome) and genome_is_frozen(base_genome)
    assert [c.id for c in channels_between(genome, ROOT, BACKEND)] == [*before, "budgeted"]
    assert [c.id for c in channels_between(base_genome, ROOT, BACKEND)] == before


def test_a_version_decoded_after_a_restart_is_frozen_too() -> None:
    genome_bootstrap(template="nested", actor="operator:test")
    genome_apply_patch(patch=BUDGETED, actor="operator:test")
    selectors._version_cache.clear()  # what a restarted process starts with

    version_id = champion_version_id()
    assert version_id is not None
    genome = genome_version(version_id=version_id)

    assert genome_is_frozen(genome)
    assert "budgeted" in [c.id for c in channels_between(genome, BACKEND, ROOT)]
