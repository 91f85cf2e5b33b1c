"""Type-checked encoding of typed values into plain JSON, compiled once per annotation."""

from __future__ import annotations

import dataclasses
import enum
import functools
import typing
from typing import Any, cast

from organization.genome.codec.common import (
    NONE_TYPE,
    SCALARS,
    Encoder,
    JsonObject,
    JsonValue,
    Problem,
    enum_member,
    field_specs,
    kind_of,
    mismatch,
    union_members,
)
from organization.genome.enums import LeafKind


def to_json_value(value: object, annotation: Any = None) -> JsonValue:
    """Encode ``value`` (checked against ``annotation``, default its own type) as plain JSON."""
    key: Any = type(value) if annotation is None else annotation
    try:
        return _encoder(key)(value)
    except Problem as problem:
        raise problem.format_error("") from None


@functools.cache
def _encoder(annotation: Any) -> Encoder:
    members = union_members(annotation)
    if members is not None:
        return _union_encoder(annotation, members)
    if annotation in SCALARS:
        return SCALARS[annotation]
    if annotation is LeafKind:
        return _encode_leaf_kind
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        enum_type = annotation
        return lambda value: cast(str, enum_member(enum_type, value).value)
    origin = typing.get_origin(annotation)
    if origin is list:
        return _list_encoder(annotation)
    if origin is dict:
        return _dict_encoder(annotation)
    if dataclasses.is_dataclass(annotation):
        return _dataclass_encoder(cast(type, annotation))
    raise TypeError(f"codec cannot encode annotation {annotation!r}")  # programming error


def _union_encoder(annotation: Any, members: tuple[Any, ...]) -> Encoder:
    concrete = [m for m in members if m is not NONE_TYPE]
    nullable = len(concrete) < len(members)

    def encode_union(value: Any) -> JsonValue:
        if value is None:
            if nullable:
                return None
            raise mismatch(annotation, value)
        if len(concrete) == 1:
            return _encoder(concrete[0])(value)
        for member in concrete:
            if isinstance(value, member):
                return _encoder(member)(value)
        raise mismatch(annotation, value)

    return encode_union


def _encode_leaf_kind(value: Any) -> JsonValue:
    if not isinstance(value, LeafKind):
        raise mismatch(LeafKind, value)
    return {"Custom": value.name} if value.is_custom else value.name


def _list_encoder(annotation: Any) -> Encoder:
    (item_type,) = typing.get_args(annotation)

    def encode_list(value: Any) -> JsonValue:
        if not isinstance(value, list):
            raise mismatch(annotation, value)
        encode_item = _encoder(item_type)
        encoded: list[JsonValue] = []
        for index, item in enumerate(value):
            try:
                encoded.append(encode_item(item))
            except Problem as problem:
                raise problem.at(index) from None
        return encoded

    return encode_list


def _dict_encoder(annotation: Any) -> Encoder:
    _, value_type = typing.get_args(annotation)

    def encode_dict(value: Any) -> JsonValue:
        if not isinstance(value, dict):
            raise mismatch(annotation, value)
        bad_keys = [key for key in value if not isinstance(key, str)]
        if bad_keys:
            raise Problem(f"expected string keys, got {bad_keys[0]!r}")
        encode_value = _encoder(value_type)
        encoded: JsonObject = {}
        for key in sorted(value):
            try:
                encoded[key] = encode_value(value[key])
            except Problem as problem:
                raise problem.at(key) from None
        return encoded

    return encode_dict


def _dataclass_encoder(cls: type) -> Encoder:
    kind = kind_of(cls)

    def encode_dataclass(value: Any) -> JsonValue:
        if not isinstance(value, cls):
            raise mismatch(cls, value)
        encoded: JsonObject = {} if kind is None else {"kind": kind}
        for spec in field_specs(cls):
            try:
                encoded[spec.json_name] = _encoder(spec.annotation)(getattr(value, spec.attribute))
            except Problem as problem:
                raise problem.at(spec.json_name) from None
        return encoded

    return encode_dataclass
