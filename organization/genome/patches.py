"""Genome patches (docs/rules/genome.md): eleven kinds, ``{"kind": "<kind>", ...fields}``.

Parsing fills every generated value (a child's id, an extracted child's id, a channel or
component id) with a fresh UUID, so a parsed patch is fully determined: applying it twice to
the same genome gives equal results, and ``patch_to_json(parse_patch(x))`` replays exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, TypeAlias, cast

from organization.genome.codec import (
    JsonObject,
    from_json_value,
    load_json,
    to_json_value,
)
from organization.genome.enums import NodeLifecycleStatus, PromptSection
from organization.genome.model import (
    ChannelConfig,
    PromptComponent,
    ToolSpec,
    ViableNode,
    new_id,
)


@dataclass(kw_only=True)
class AddChild:
    KIND: ClassVar[str] = "add_child"
    parent_id: str
    child: ViableNode


@dataclass(kw_only=True)
class PromoteLeafToMetasystem:
    KIND: ClassVar[str] = "promote_leaf_to_metasystem"
    node_id: str
    extracted_child_name: str
    extracted_child_id: str = field(default_factory=new_id)


@dataclass(kw_only=True)
class RemoveSubtree:
    KIND: ClassVar[str] = "remove_subtree"
    node_id: str


@dataclass(kw_only=True)
class AddChannel:
    KIND: ClassVar[str] = "add_channel"
    channel: ChannelConfig


@dataclass(kw_only=True)
class RemoveChannel:
    KIND: ClassVar[str] = "remove_channel"
    channel_id: str


@dataclass(kw_only=True)
class AddPromptComponent:
    KIND: ClassVar[str] = "add_prompt_component"
    node_id: str
    section: PromptSection
    component: PromptComponent


@dataclass(kw_only=True)
class RemovePromptComponent:
    KIND: ClassVar[str] = "remove_prompt_component"
    node_id: str
    component_id: str


@dataclass(kw_only=True)
class AddTool:
    KIND: ClassVar[str] = "add_tool"
    node_id: str
    tool: ToolSpec


@dataclass(kw_only=True)
class RemoveTool:
    KIND: ClassVar[str] = "remove_tool"
    node_id: str
    tool_name: str


@dataclass(kw_only=True)
class SetNodeStatus:
    KIND: ClassVar[str] = "set_node_status"
    node_id: str
    status: NodeLifecycleStatus


@dataclass(kw_only=True)
class Batch:
    """Patches applied in order, all or nothing."""

    KIND: ClassVar[str] = "batch"
    patches: list[Patch] = field(default_factory=list)


Patch: TypeAlias = (
    AddChild
    | PromoteLeafToMetasystem
    | RemoveSubtree
    | AddChannel
    | RemoveChannel
    | AddPromptComponent
    | RemovePromptComponent
    | AddTool
    | RemoveTool
    | SetNodeStatus
    | Batch
)

PATCH_KINDS: tuple[str, ...] = tuple(
    kind.KIND
    for kind in (
        AddChild,
        PromoteLeafToMetasystem,
        RemoveSubtree,
        AddChannel,
        RemoveChannel,
        AddPromptComponent,
        RemovePromptComponent,
        AddTool,
        RemoveTool,
        SetNodeStatus,
        Batch,
    )
)


def parse_patch(data: object) -> Patch:
    """Strictly decode a patch from parsed JSON or JSON text; GenomeFormatError names the path."""
    return cast(Patch, from_json_value(cast(type, Patch), load_json(data)))


def patch_to_json(patch: Patch) -> JsonObject:
    """The complete, replayable JSON form of a patch."""
    return cast(JsonObject, to_json_value(patch, Patch))
