"""Shared pieces of the codec: JSON types, path-collecting problems, field specs, scalars."""

from __future__ import annotations

import dataclasses
import enum
import functools
import json
import math
import types
import typing
from collections.abc import Callable
from typing import Any, TypeAlias, cast

from ledger.chain import canonical_json as canonical_json  # one canonical JSON for all
from organization.genome.enums import STANDARD_LEAF_KINDS, LeafKind
from organization.genome.errors import GenomeFormatError
from organization.genome.model import JSON_NAME

JsonValue: TypeAlias = bool | int | float | str | list["JsonValue"] | dict[str, "JsonValue"] | None
JsonObject: TypeAlias = dict[str, JsonValue]
Encoder: TypeAlias = Callable[[Any], JsonValue]
Decoder: TypeAlias = Callable[[Any], Any]

MISSING = object()
NONE_TYPE = type(None)


class Problem(Exception):
    """Internal: a problem found deep inside a value; collects its JSON path on the way out."""

    def __init__(self, problem: str, *, mismatch: bool = False) -> None:
        super().__init__(problem)
        self.problem = problem
        self.mismatch = mismatch  # a plain "expected X, got Y" that an outer Optional may widen
        self.segments: list[str | int] = []

    def at(self, segment: str | int) -> Problem:
        self.segments.append(segment)
        return self

    def format_error(self, base: str) -> GenomeFormatError:
        path = base
        for segment in reversed(self.segments):
            path = f"{path}[{segment}]" if isinstance(segment, int) else join(path, segment)
        return GenomeFormatError(path, self.problem)


def join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def shown(value: object) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def union_members(annotation: Any) -> tuple[Any, ...] | None:
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        return typing.get_args(annotation)
    return None


def kind_of(cls: object) -> str | None:
    kind = getattr(cls, "KIND", None)
    return kind if isinstance(kind, str) else None


def expected(annotation: Any) -> str:
    members = union_members(annotation)
    if members is not None:
        parts = [expected(m) for m in members if m is not NONE_TYPE]
        if NONE_TYPE in members:
            parts.append("null")
        return " or ".join(parts)
    simple = {str: "a string", bool: "a boolean", int: "a non-negative integer", float: "a number"}
    if annotation in simple:
        return simple[annotation]
    if annotation is LeafKind:
        return f'one of {", ".join(STANDARD_LEAF_KINDS)} or {{"Custom": "<name>"}}'
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return "one of " + ", ".join(str(m.value) for m in annotation)
    if typing.get_origin(annotation) is list:
        return "a list"
    if dataclasses.is_dataclass(annotation):
        return f"an object ({cast(type, annotation).__name__})"
    return "an object"


def mismatch(annotation: Any, value: object) -> Problem:
    return Problem(f"expected {expected(annotation)}, got {shown(value)}", mismatch=True)


# ----------------------------------------------------------------------------- field specs


@dataclasses.dataclass(frozen=True)
class FieldSpec:
    attribute: str
    json_name: str
    annotation: Any
    required: bool


@functools.cache
def field_specs(cls: Any) -> tuple[FieldSpec, ...]:
    hints = typing.get_type_hints(cls)
    specs = []
    for f in dataclasses.fields(cls):
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        specs.append(FieldSpec(f.name, f.metadata.get(JSON_NAME, f.name), hints[f.name], required))
    return tuple(specs)


# ----------------------------------------------------------------------------- scalars


def check_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    raise mismatch(str, value)


def check_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise mismatch(bool, value)


def check_int(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise mismatch(int, value)


def check_float(value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    raise mismatch(float, value)


SCALARS: dict[Any, Callable[[Any], Any]] = {
    str: check_str,
    bool: check_bool,
    int: check_int,
    float: check_float,
}


def enum_member(cls: type[enum.Enum], value: Any) -> enum.Enum:
    if isinstance(value, cls):
        return value
    if isinstance(value, str):
        for member in cls:
            if member.value == value:
                return member
    raise Problem(f"unknown {cls.__name__} {shown(value)}; expected {expected(cls)}")


# ----------------------------------------------------------------------------- JSON text


def load_json(data: object) -> object:
    """Accept already-parsed JSON, or JSON text (``str``/``bytes``) which is parsed first."""
    if isinstance(data, str | bytes | bytearray):
        try:
            return cast(object, json.loads(data))
        except json.JSONDecodeError as error:
            raise GenomeFormatError("", f"not valid JSON: {error}") from None
    return data
