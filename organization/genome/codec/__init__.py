"""A small strict JSON codec driven by dataclass type hints.

Supported annotations: ``str``, ``int`` (non-negative: every integer in the genome is a count,
a budget or a timestamp), ``float``, ``bool``, ``X | None``, ``list[X]``, ``dict[str, X]``,
``Enum`` subclasses with string values, :class:`LeafKind`, nested dataclasses, and unions of
dataclasses that carry a ``KIND`` class attribute (a tagged union: ``{"kind": KIND, ...}``).

Decoding is strict: wrong types, unknown enum values and unknown fields raise
:class:`GenomeFormatError` naming the JSON path (``nodes.a.leaf_operation.allows_review``).
A field with a default may be omitted and takes that default; a field without one is required.
Encoding checks the same types, so a genome built by hand in Python cannot smuggle a value
into the wire format that decoding would later refuse.

Each annotation is compiled once into an encoder and a decoder closure; the JSON path is only
assembled when something is wrong, so the happy path builds no strings.
"""

from organization.genome.codec.common import JsonObject, JsonValue, canonical_json, load_json
from organization.genome.codec.decode import from_json_value
from organization.genome.codec.encode import to_json_value

__all__ = [
    "JsonObject",
    "JsonValue",
    "canonical_json",
    "from_json_value",
    "load_json",
    "to_json_value",
]
