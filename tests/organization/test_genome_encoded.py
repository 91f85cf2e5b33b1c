"""A genome encoded piece by piece is byte for byte the plain encoding, patch after patch."""

from __future__ import annotations

import copy

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from organization.genome import (
    GenomeError,
    GenomeFormatError,
    SetNodeStatus,
    apply_patch,
    apply_patch_encoded,
    canonical_json,
    content_hash,
    encode_genome,
    fan_out_organization,
    genome_to_json,
)
from tests.organization.strategies import genomes, patches_for

pytestmark = pytest.mark.slow  # property tests over generated genomes


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_patching_an_encoded_genome_stores_and_hashes_exactly_what_the_plain_path_does(
    data: st.DataObject,
) -> None:
    genome = data.draw(genomes(max_nodes=6))
    encoded = encode_genome(genome)
    assert encoded.json_text() == canonical_json(genome_to_json(genome))
    assert encoded.content_hash() == content_hash(genome)
    for _ in range(data.draw(st.integers(1, 5))):
        patch = data.draw(patches_for(encoded.genome))
        snapshot = copy.deepcopy(encoded.genome)
        try:
            expected = apply_patch(encoded.genome, patch)
        except GenomeError as error:
            with pytest.raises(type(error)):
                apply_patch_encoded(encoded, patch)
            continue
        patched = apply_patch_encoded(encoded, patch)
        assert encoded.genome == snapshot, "the base genome is never changed"
        assert patched.genome == expected
        assert patched.json_text() == canonical_json(genome_to_json(expected))
        assert patched.content_hash() == content_hash(expected)
        encoded = patched


def test_a_wrongly_typed_status_in_a_hand_built_patch_is_still_refused_by_path() -> None:
    encoded = encode_genome(fan_out_organization(20))
    patch = SetNodeStatus(node_id="n-3", status=42)  # type: ignore[arg-type]

    with pytest.raises(GenomeFormatError, match=r"^nodes\.n-3\.status: "):
        apply_patch_encoded(encoded, patch)
