"""Genome ⇄ JSON and the content hash."""

from __future__ import annotations

import hashlib
from typing import cast

from organization.genome.codec import (
    JsonObject,
    canonical_json,
    from_json_value,
    load_json,
    to_json_value,
)
from organization.genome.model import OrganizationalGenome
from organization.genome.validation import validate

# Identity and history, not content: two genomes that organise work the same way hash equally
# even when they were created separately or descend from different parents.
VOLATILE_GENOME_FIELDS = ("id", "lineage")


def genome_to_json(genome: OrganizationalGenome) -> JsonObject:
    """The wire form (snake_case fields, enums by variant name, maps sorted by key)."""
    return cast(JsonObject, to_json_value(genome, OrganizationalGenome))


def genome_from_json(data: object, *, check: bool = True) -> OrganizationalGenome:
    """Strictly decode a genome from parsed JSON or JSON text.

    Raises GenomeFormatError (naming the JSON path) for malformed input and, unless
    ``check=False``, GenomeInvalid when the decoded structure breaks an invariant.
    """
    genome = from_json_value(OrganizationalGenome, load_json(data))
    if check:
        validate(genome)
    return genome


def content_hash(genome: OrganizationalGenome) -> str:
    """``sha256:<hex>`` of the canonical JSON of the genome without its id and lineage."""
    content = genome_to_json(genome)
    for name in VOLATILE_GENOME_FIELDS:
        content.pop(name, None)
    digest = hashlib.sha256(canonical_json(content).encode("utf-8")).hexdigest()
    return f"sha256:{digest}"
