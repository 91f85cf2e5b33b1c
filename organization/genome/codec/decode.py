"""Strict decoding of parsed JSON into typed values, compiled once per annotation."""

from __future__ import annotations

import dataclasses
import difflib
import enum
import functools
import typing
from typing import Any, TypeVar, cast

from organization.genome.codec.common import (
    NONE_TYPE,
    SCALARS,
    Decoder,
    Problem,
    check_str,
    enum_member,
    expected,
    field_specs,
    kind_of,
    mismatch,
    shown,
    union_members,
)
from organization.genome.enums import STANDARD_LEAF_KINDS, LeafKind

T = TypeVar("T")


def from_json_value(annotation: type[T], data: object, path: str = "") -> T:
    """Decode ``data`` (already parsed JSON) as ``annotation``; strict, see module docstring."""
    key: Any = annotation  # a type, or a union such as Patch
    try:
        return cast(T, _decoder(key)(data))
    except Problem as problem:
        raise problem.format_error(path) from None


@functools.cache
def _decoder(annotation: Any) -> Decoder:
    members = union_members(annotation)
    if members is not None:
        return _union_decoder(annotation, members)
    if annotation in SCALARS:
        return SCALARS[annotation]
    if annotation is LeafKind:
        return _decode_leaf_kind
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return _enum_decoder(annotation)
    origin = typing.get_origin(annotation)
    if origin is list:
        return _list_decoder(annotation)
    if origin is dict:
        return _dict_decoder(annotation)
    if dataclasses.is_dataclass(annotation):
        return _dataclass_decoder(cast(type, annotation))
    raise TypeError(f"codec cannot decode annotation {annotation!r}")  # programming error


def _union_decoder(annotation: Any, members: tuple[Any, ...]) -> Decoder:
    concrete = [m for m in members if m is not NONE_TYPE]
    nullable = len(concrete) < len(members)
    if len(concrete) == 1:
        inner = concrete[0]

        def decode_optional(data: Any) -> Any:
            if data is None:
                if nullable:
                    return None
                raise mismatch(annotation, data)
            try:
                return _decoder(inner)(data)
            except Problem as problem:
                if nullable and problem.mismatch and not problem.segments:
                    raise mismatch(annotation, data) from None
                raise

        return decode_optional
    tagged = {kind_of(m): m for m in concrete}
    if None in tagged:
        raise TypeError(f"codec cannot decode untagged union {annotation!r}")
    kinds = ", ".join(cast(str, kind) for kind in tagged)

    def decode_tagged(data: Any) -> Any:
        if data is None and nullable:
            return None
        if not isinstance(data, dict):
            raise mismatch(annotation, data)
        if "kind" not in data:
            raise Problem(f'missing "kind"; expected one of {kinds}')
        kind = data["kind"]
        if not isinstance(kind, str) or kind not in tagged:
            raise Problem(f"unknown kind {shown(kind)}; expected one of {kinds}").at("kind")
        return _decoder(tagged[kind])(data)

    return decode_tagged


def _enum_decoder(cls: type[enum.Enum]) -> Decoder:
    by_value = {member.value: member for member in cls}

    def decode_enum(data: Any) -> enum.Enum:
        if isinstance(data, str):
            member = by_value.get(data)
            if member is not None:
                return member
        return enum_member(cls, data)  # a member already, or the error naming the choices

    return decode_enum


def _decode_leaf_kind(data: Any) -> LeafKind:
    if isinstance(data, str) and data in STANDARD_LEAF_KINDS:
        return LeafKind(data)
    if isinstance(data, dict) and list(data) == ["Custom"]:
        return LeafKind.custom(_check_str_at(data["Custom"], "Custom"))
    raise Problem(f"unknown LeafKind {shown(data)}; expected {expected(LeafKind)}")


def _check_str_at(value: Any, segment: str) -> str:
    try:
        return check_str(value)
    except Problem as problem:
        raise problem.at(segment) from None


def _list_decoder(annotation: Any) -> Decoder:
    (item_type,) = typing.get_args(annotation)

    def decode_list(data: Any) -> list[Any]:
        if not isinstance(data, list):
            raise mismatch(annotation, data)
        decode_item = _decoder(item_type)
        if decode_item is check_str and all(type(item) is str for item in data):
            return list(data)  # the common case (ids, refs, names): nothing to convert
        decoded = []
        for index, item in enumerate(data):
            try:
                decoded.append(decode_item(item))
            except Problem as problem:
                raise problem.at(index) from None
        return decoded

    return decode_list


def _dict_decoder(annotation: Any) -> Decoder:
    _, value_type = typing.get_args(annotation)

    def decode_dict(data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise mismatch(annotation, data)
        decode_value = _decoder(value_type)
        decoded = {}
        for key, value in data.items():
            if not isinstance(key, str):
                raise Problem(f"expected string keys, got {key!r}")
            try:
                decoded[key] = decode_value(value)
            except Problem as problem:
                raise problem.at(key) from None
        return decoded

    return decode_dict


def _dataclass_decoder(cls: type) -> Decoder:
    # The plan is built on first use, not here: a dataclass may (indirectly) contain itself.
    plan: list[tuple[str, str, Decoder, bool]] = []
    known: set[str] = set()

    def build_plan() -> None:
        for spec in field_specs(cls):
            plan.append((spec.json_name, spec.attribute, _decoder(spec.annotation), spec.required))
            known.add(spec.json_name)
        if kind_of(cls) is not None:
            known.add("kind")

    def decode_dataclass(data: Any) -> Any:
        if not isinstance(data, dict):
            raise mismatch(cls, data)
        if not plan:
            build_plan()
        for key in data:
            if key not in known:
                raise _unknown_field(cls, key, known)
        kwargs: dict[str, Any] = {}
        for json_name, attribute, decode_field, required in plan:
            if json_name not in data:
                if required:
                    problem = f"required field of {cls.__name__} is missing"
                    raise Problem(problem).at(json_name)
                continue
            try:
                kwargs[attribute] = decode_field(data[json_name])
            except Problem as problem:
                raise problem.at(json_name) from None
        return cls(**kwargs)

    return decode_dataclass


def _unknown_field(cls: type, key: object, known: set[str]) -> Problem:
    close = difflib.get_close_matches(str(key), sorted(known), n=1)
    suggestion = f"did you mean {close[0]!r}? " if close else ""
    problem = (
        f"unknown field of {cls.__name__} ({suggestion}known fields: {', '.join(sorted(known))})"
    )
    return Problem(problem).at(str(key))
