"""content_hash: equal content hashes equally; identity and history do not count."""

from __future__ import annotations

import hashlib
import json

from organization.genome import (
    AddTool,
    ToolSpec,
    apply_patch,
    canonical_json,
    content_hash,
    genome_from_json,
    genome_to_json,
    nested,
    single_coder,
)


def test_it_is_a_sha256_of_the_canonical_json_without_id_and_lineage() -> None:
    genome = nested()
    content = genome_to_json(genome)
    del content["id"], content["lineage"]
    expected = hashlib.sha256(canonical_json(content).encode()).hexdigest()

    assert content_hash(genome) == f"sha256:{expected}"


def test_separately_built_equal_genomes_hash_equally() -> None:
    first, second = nested(), nested()

    assert first.id != second.id
    assert content_hash(first) == content_hash(second)


def test_lineage_does_not_change_the_hash() -> None:
    genome = nested()
    before = content_hash(genome)
    genome.lineage.parent_genome_ids.append("older")
    genome.lineage.mutation_ids.append("suggestion-1")

    assert content_hash(genome) == before


def test_any_content_change_changes_the_hash() -> None:
    genome = nested()

    patched = apply_patch(genome, AddTool(node_id="backend-coder", tool=ToolSpec(name="git")))

    assert content_hash(patched) != content_hash(genome)
    assert content_hash(nested()) != content_hash(single_coder())


def test_it_is_stable_across_a_json_round_trip() -> None:
    genome = nested()
    genome.metadata = {"ünïcode": "値", "b": "1"}

    reloaded = genome_from_json(json.dumps(genome_to_json(genome), ensure_ascii=True))

    assert content_hash(reloaded) == content_hash(genome)


def test_canonical_json_sorts_keys_drops_spaces_and_keeps_unicode() -> None:
    assert canonical_json({"b": [1, "é"], "a": None}) == '{"a":null,"b":[1,"é"]}'
