"""Messages between nodes (docs/rules/channels.md, "Payload types"): plain dataclasses, no Django.

Directive, TaskPacket, TaskResult and the MessageEnvelope that carries them on a
VSM channel. ``to_json`` / ``from_json`` convert to and from the JSON wire form
(snake_case fields, enums by variant name). Input from outside (the REST API) is
validated at the edge; these decoders trust their input's shape.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import types
import typing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from ledger.chain import new_id as new_id  # the domain's ids are the ledger's
from organization.genome import ChannelPriority, VsmChannelType

T = TypeVar("T")
JsonObject = dict[str, Any]


def now_rfc3339() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class RiskClass(enum.StrEnum):
    LOW = "Low"
    MEDIUM = "Medium"
    HIGH = "High"
    CRITICAL = "Critical"


class TaskStatus(enum.StrEnum):
    COMPLETED = "Completed"
    FAILED = "Failed"
    REJECTED = "Rejected"
    NEEDS_HUMAN = "NeedsHuman"
    NOOP = "Noop"


class PayloadType:
    DIRECTIVE = "vsm.directive"
    TASK_PACKET = "vsm.task_packet"
    TASK_RESULT = "vsm.task_result"
    RESOURCE_BARGAIN = "vsm.resource_bargain"
    RESOURCE_ALLOCATION_DECISION = "vsm.resource_allocation_decision"
    SYSTEM2_COORDINATION_SIGNAL = "vsm.system2_coordination_signal"
    OPERATION_HANDOFF = "vsm.operation_handoff"
    MANAGEMENT_OPERATION_DIRECTIVE = "vsm.management_operation_directive"
    ENVIRONMENT_SIGNAL = "vsm.environment_signal"
    COMMAND = "vsm.command"
    AUDIT_REQUEST = "vsm.audit_request"
    AUDIT_REPORT = "vsm.audit_report"
    ALGEDONIC_SIGNAL = "vsm.algedonic_signal"
    THREE_FOUR_HOMEOSTAT_SIGNAL = "vsm.three_four_homeostat_signal"
    GENE_SUGGESTION = "vsm.gene_suggestion"


@dataclass(kw_only=True)
class AcceptanceCriterion:
    name: str
    description: str = ""
    verifier: str | None = None  # a shell command run in the task workspace
    # The registered verifier (workers.AcceptanceVerifier) the command came from.
    verifier_name: str | None = None


@dataclass(kw_only=True)
class StaticTaskPredicates:
    languages: list[str] = field(default_factory=list)
    likely_files: list[str] = field(default_factory=list)
    modules: list[str] = field(default_factory=list)
    dependencies: list[str] = field(default_factory=list)
    test_targets: list[str] = field(default_factory=list)
    public_api_touched: bool = False
    database_touched: bool = False
    auth_touched: bool = False
    config_touched: bool = False
    migration_touched: bool = False
    security_sensitive: bool = False
    estimated_blast_radius: RiskClass | None = None
    tags: list[str] = field(default_factory=list)
    domain_markers: dict[str, str] = field(default_factory=dict)


@dataclass(kw_only=True)
class DirectiveMessage:
    id: str = field(default_factory=new_id)
    origin: str = "operator"
    title: str
    body: str = ""
    constraints: list[str] = field(default_factory=list)
    desired_state: str | None = None
    risk: RiskClass = RiskClass.MEDIUM
    metadata: dict[str, str] = field(default_factory=dict)
    # Not in the reference: acceptance items travel with the directive to every task.
    acceptance: list[AcceptanceCriterion] = field(default_factory=list)


@dataclass(kw_only=True)
class TaskPacket:
    id: str = field(default_factory=new_id)
    directive_id: str | None = None
    parent_task_id: str | None = None
    title: str
    goal: str = ""
    target_state: str | None = None
    scope: list[str] = field(default_factory=list)
    constraints: list[str] = field(default_factory=list)
    context_refs: list[str] = field(default_factory=list)
    authority_refs: list[str] = field(default_factory=list)
    dependencies: list[str] = field(default_factory=list)
    acceptance: list[AcceptanceCriterion] = field(default_factory=list)
    risk: RiskClass = RiskClass.MEDIUM
    static_predicates: StaticTaskPredicates = field(default_factory=StaticTaskPredicates)
    assigned_to: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(kw_only=True)
class TaskArtifact:
    kind: str
    uri: str | None = None
    content: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(kw_only=True)
class TaskResult:
    task_id: str
    produced_by: str
    status: TaskStatus
    summary: str = ""
    artifacts: list[TaskArtifact] = field(default_factory=list)
    files_touched: list[str] = field(default_factory=list)
    tests_run: list[str] = field(default_factory=list)
    error: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        return self.status in (TaskStatus.COMPLETED, TaskStatus.NOOP)


@dataclass(kw_only=True)
class MessageEnvelope:
    id: str = field(default_factory=new_id)
    channel_type: VsmChannelType
    source_node_id: str | None = None
    target_node_id: str | None = None
    correlation_id: str | None = None
    causation_id: str | None = None
    priority: ChannelPriority = ChannelPriority.NORMAL
    created_at: str = field(default_factory=now_rfc3339)
    payload_type: str
    payload: JsonObject = field(default_factory=dict)
    trace: list[str] = field(default_factory=list)
    metadata: dict[str, str] = field(default_factory=dict)


# -- JSON -------------------------------------------------------------------


_PLAIN = frozenset({str, int, float, bool, type(None)})


def to_json(value: Any) -> Any:
    """The JSON wire form of a message dataclass (or any nesting of them).

    Every hop encodes its envelopes, payload and all, so the common types are tried first,
    by exact type (a ``StrEnum`` member is an ``Enum`` here, not a ``str``)."""
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is dict:
        return {str(key): to_json(item) for key, item in sorted(value.items())}
    if kind is list or kind is tuple:
        return [to_json(item) for item in value]
    names = _field_names(kind)
    if names is not None:
        return {name: to_json(getattr(value, name)) for name in names}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, list | tuple):
        return [to_json(item) for item in value]
    if isinstance(value, dict):
        return {str(key): to_json(item) for key, item in sorted(value.items())}
    return value


_FIELD_NAMES: dict[type, tuple[str, ...] | None] = {}


def _field_names(kind: type) -> tuple[str, ...] | None:
    """A dataclass's field names in order, or None for any other type (asked once a type)."""
    try:
        return _FIELD_NAMES[kind]
    except KeyError:
        names = (
            tuple(f.name for f in dataclasses.fields(kind))
            if dataclasses.is_dataclass(kind)
            else None
        )
        _FIELD_NAMES[kind] = names
        return names


def from_json(cls: type[T], data: JsonObject) -> T:
    """Rebuild a message dataclass from its wire form (missing fields take defaults)."""
    return typing.cast(T, _decoder(typing.cast(Any, cls))(data))


Decoder = typing.Callable[[Any], Any]


def _as_is(data: Any) -> Any:
    return data


@functools.cache
def _decoder(annotation: Any) -> Decoder:
    """How to decode a value of ``annotation``, worked out once per annotation: every hop
    decodes its envelope and payload. ``None`` decodes to ``None`` whatever the type."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        inner = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        return _decoder(inner[0])
    if origin is list:
        (item,) = typing.get_args(annotation)
        decode_item = _decoder(item)
        return lambda data: None if data is None else [decode_item(value) for value in data]
    if origin is dict:
        _, item = typing.get_args(annotation)
        decode_value = _decoder(item)
        return lambda data: (
            None if data is None else {key: decode_value(value) for key, value in data.items()}
        )
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return lambda data: None if data is None else annotation(data)
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        cls: Any = annotation

        def decode_fields(data: Any) -> Any:
            if data is None:
                return None
            hints = _field_hints(cls)  # on first use: a dataclass may nest itself
            fields = {}
            for key, value in data.items():
                decode = hints.get(key)
                if decode is not None:
                    fields[key] = decode(value)
            return cls(**fields)

        return decode_fields
    return _as_is


@functools.cache
def _field_hints(cls: type) -> dict[str, Decoder]:
    """A dataclass's fields' decoders, resolved once (``get_type_hints`` is slow)."""
    hints = typing.get_type_hints(cls)
    return {f.name: _decoder(hints[f.name]) for f in dataclasses.fields(cls)}
