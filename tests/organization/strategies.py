"""Hypothesis strategies for genomes and genome patches (reusable by other test modules).

* ``genomes()`` — random valid genomes built through ``add_child``, with random content in every
  node field and random extra genome-level channels between existing nodes.
* ``patches_for(genome)`` — a patch aimed at the given genome: mostly plausible ones, plus the
  invalid kinds a user can send (unknown ids, removing the root, promoting a metasystem, removing
  a missing prompt component, adding an existing node, a batch whose last step fails, ...).
* ``values_of(annotation)`` — a random value of any type the genome codec understands.
* ``mutate_one_field(draw, obj)`` — change exactly one field somewhere inside a dataclass
  (``draw`` is ``data.draw`` of ``st.data()``); used to prove the content hash sees every field.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import types
import typing
from collections.abc import Callable
from typing import Any, cast

from hypothesis import strategies as st

from organization.genome import (
    AddChannel,
    AddChild,
    AddPromptComponent,
    AddTool,
    Batch,
    ChannelConfig,
    ChannelDirection,
    ChannelPriority,
    GenomeLineage,
    LeafKind,
    NodeLifecycleStatus,
    OrganizationalGenome,
    Patch,
    PromoteLeafToMetasystem,
    PromptComponent,
    PromptSection,
    RemoveChannel,
    RemovePromptComponent,
    RemoveSubtree,
    RemoveTool,
    SetNodeStatus,
    ToolSpec,
    ViableNode,
    VsmChannelType,
    add_child,
)
from organization.genome.enums import STANDARD_LEAF_KINDS

MAX_LIST = 2

# Ids with dots, dashes and non-ASCII letters, to exercise JSON paths and canonical encoding.
ids = st.text(alphabet="abcxyz019-._éß漢", min_size=1, max_size=8)
texts = st.text(max_size=12)
string_maps = st.dictionaries(texts, texts, max_size=2)

leaf_kinds = st.one_of(
    st.sampled_from([LeafKind(name) for name in STANDARD_LEAF_KINDS]),
    texts.map(LeafKind.custom),
)

# Structural fields are owned by the genome builder, never drawn at random.
_STRUCTURAL_NODE_FIELDS = {"id", "parent_id", "children"}


def _union_members(annotation: Any) -> tuple[Any, ...] | None:
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        return typing.get_args(annotation)
    return None


@functools.cache
def values_of(annotation: Any) -> st.SearchStrategy[Any]:
    """Random values of a type the genome codec supports."""
    members = _union_members(annotation)
    if members is not None:
        return st.one_of([values_of(m) if m is not type(None) else st.none() for m in members])
    if annotation is str:
        return texts
    if annotation is bool:
        return st.booleans()
    if annotation is int:
        return st.integers(min_value=0, max_value=10**9)
    if annotation is float:
        return st.floats(allow_nan=False, allow_infinity=False)
    if annotation is LeafKind:
        return leaf_kinds
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return st.sampled_from(list(annotation))
    origin = typing.get_origin(annotation)
    if origin is list:
        (item,) = typing.get_args(annotation)
        return st.lists(values_of(item), max_size=MAX_LIST)
    if origin is dict:
        _, value = typing.get_args(annotation)
        return st.dictionaries(texts, values_of(value), max_size=MAX_LIST)
    if dataclasses.is_dataclass(annotation):
        hints = typing.get_type_hints(annotation)
        fields = {
            f.name: values_of(hints[f.name])
            for f in dataclasses.fields(annotation)
            if not (annotation is ViableNode and f.name in _STRUCTURAL_NODE_FIELDS)
        }
        return st.builds(cast(type, annotation), **fields)
    raise TypeError(f"no strategy for {annotation!r}")


def detached_nodes(node_id: str | st.SearchStrategy[str] = ids) -> st.SearchStrategy[ViableNode]:
    """A node with random content and no parent or children (ready for add_child)."""
    id_strategy = st.just(node_id) if isinstance(node_id, str) else node_id
    return st.builds(
        lambda node, new_id: dataclasses.replace(node, id=new_id),
        values_of(ViableNode),
        id_strategy,
    )


@st.composite
def genomes(draw: st.DrawFn, max_nodes: int = 7) -> OrganizationalGenome:
    node_ids = draw(st.lists(ids, min_size=1, max_size=max_nodes, unique=True))
    root = draw(detached_nodes(node_ids[0]))
    genome = OrganizationalGenome.from_root(root)
    for index, node_id in enumerate(node_ids[1:], start=1):
        parent_id = draw(st.sampled_from(node_ids[:index]))
        add_child(genome, parent_id, draw(detached_nodes(node_id)))
    endpoints = st.none() | st.sampled_from(node_ids)
    extra_channels = draw(
        st.lists(channels(endpoints), max_size=MAX_LIST, unique_by=lambda c: c.id)
    )
    taken = {channel.id for channel in genome.channels}
    genome.channels.extend(c for c in extra_channels if c.id not in taken)
    genome.metadata = draw(string_maps)
    lineage_type: Any = GenomeLineage  # Any: functools.cache wants a hashable key, mypy disagrees
    genome.lineage = draw(values_of(lineage_type))
    return genome


def channels(endpoints: st.SearchStrategy[str | None]) -> st.SearchStrategy[ChannelConfig]:
    return st.builds(
        ChannelConfig,
        id=ids.map(lambda i: f"extra-{i}"),
        channel_type=st.sampled_from(list(VsmChannelType)),
        from_node_id=endpoints,
        to_node_id=endpoints,
        direction=st.sampled_from(list(ChannelDirection)),
        priority=st.sampled_from(list(ChannelPriority)),
        metadata=string_maps,
    )


def _component_ids(genome: OrganizationalGenome) -> list[str]:
    found = []
    for node in genome.nodes.values():
        prompt = node.prompt
        for component in (
            prompt.behavior_rules
            + prompt.domain_hints
            + prompt.codebase_conventions
            + prompt.negative_constraints
        ):
            found.append(component.id)
        if prompt.output_contract is not None:
            found.append(prompt.output_contract.id)
    return found


# Generated ids never collide with ``ids`` (whose alphabet lacks these letters), so "missing-…"
# is always unknown and "new-…" is fresh unless an earlier patch already used it.
def _unknown_id(draw: st.DrawFn) -> str:
    return "missing-" + draw(ids)


def _fresh_id(draw: st.DrawFn, genome: OrganizationalGenome) -> str:
    candidate = "new-" + draw(ids)
    while candidate in genome.nodes:
        candidate += "+"
    return candidate


tool_names = st.sampled_from(["shell", "editor"])


@st.composite
def patches_for(
    draw: st.DrawFn, genome: OrganizationalGenome, *, invalid: bool = True, batch_depth: int = 1
) -> Patch:
    """A patch aimed at ``genome``; with ``invalid``, about one in four is bound to fail."""
    if invalid and draw(st.integers(0, 3)) == 0:
        return _invalid_patch(draw, genome, batch_depth)
    return _plausible_patch(draw, genome, invalid=invalid, batch_depth=batch_depth)


def _plausible_patch(
    draw: st.DrawFn, genome: OrganizationalGenome, *, invalid: bool, batch_depth: int
) -> Patch:
    existing = sorted(genome.nodes)
    leaves = [node_id for node_id in existing if genome.nodes[node_id].is_leaf]
    non_root = [node_id for node_id in existing if node_id != genome.root_node_id]
    component_ids = _component_ids(genome)
    kinds = ["add_child", "add_channel", "remove_channel", "add_prompt_component", "add_tool"]
    kinds += ["remove_tool", "set_node_status", "promote_leaf_to_metasystem"]
    kinds += ["remove_subtree"] if non_root else []
    kinds += ["remove_prompt_component"] if component_ids else []
    kinds += ["batch"] if batch_depth > 0 else []
    kind = draw(st.sampled_from(kinds))
    node_id = draw(st.sampled_from(existing))
    if kind == "add_child":
        return AddChild(parent_id=node_id, child=draw(detached_nodes(_fresh_id(draw, genome))))
    if kind == "add_channel":
        channel = draw(channels(st.none() | st.sampled_from(existing)))
        return AddChannel(channel=dataclasses.replace(channel, id=f"added-{channel.id}"))
    if kind == "remove_channel":
        channel_ids = [channel.id for channel in genome.channels] or ["no-such-channel"]
        return RemoveChannel(channel_id=draw(st.sampled_from(channel_ids)))
    if kind == "add_prompt_component":
        section = draw(st.sampled_from(list(PromptSection)))
        component = draw(values_of(PromptComponent))
        return AddPromptComponent(node_id=node_id, section=section, component=component)
    if kind == "add_tool":
        return AddTool(node_id=node_id, tool=ToolSpec(name=draw(tool_names)))
    if kind == "remove_tool":
        return RemoveTool(node_id=node_id, tool_name=draw(tool_names))
    if kind == "set_node_status":
        status = draw(st.sampled_from(list(NodeLifecycleStatus)))
        return SetNodeStatus(node_id=node_id, status=status)
    if kind == "promote_leaf_to_metasystem":
        return PromoteLeafToMetasystem(
            node_id=draw(st.sampled_from(leaves)),
            extracted_child_name=draw(texts),
            extracted_child_id=_fresh_id(draw, genome),
        )
    if kind == "remove_subtree":
        return RemoveSubtree(node_id=draw(st.sampled_from(non_root)))
    if kind == "remove_prompt_component":
        component_id = draw(st.sampled_from(component_ids))
        return RemovePromptComponent(node_id=node_id, component_id=component_id)
    # Steps are drawn against the starting genome, so later steps may collide with earlier
    # ones; that is part of the point: a batch stands or falls as a whole.
    steps = draw(
        st.lists(patches_for(genome, invalid=invalid, batch_depth=batch_depth - 1), max_size=3)
    )
    return Batch(patches=steps)


def _invalid_patch(draw: st.DrawFn, genome: OrganizationalGenome, batch_depth: int) -> Patch:
    existing = sorted(genome.nodes)
    metasystems = [node_id for node_id in existing if genome.nodes[node_id].is_metasystem]
    kinds = ["unknown_node", "remove_root", "missing_component", "existing_child"]
    kinds += ["child_with_children", "channel_to_missing_node"]
    kinds += ["promote_metasystem"] if metasystems else []
    kinds += ["failing_batch"] if batch_depth > 0 else []
    kind = draw(st.sampled_from(kinds))
    node_id = draw(st.sampled_from(existing))
    if kind == "unknown_node":
        missing = _unknown_id(draw)
        choices: list[Patch] = [
            AddChild(parent_id=missing, child=ViableNode(name="orphan", id="new-orphan")),
            PromoteLeafToMetasystem(node_id=missing, extracted_child_name="x"),
            RemoveSubtree(node_id=missing),
            AddTool(node_id=missing, tool=ToolSpec(name="shell")),
            RemoveTool(node_id=missing, tool_name="shell"),
            SetNodeStatus(node_id=missing, status=NodeLifecycleStatus.RETIRED),
            RemovePromptComponent(node_id=missing, component_id="c"),
            AddPromptComponent(
                node_id=missing,
                section=PromptSection.DOMAIN_HINTS,
                component=PromptComponent(text="hint"),
            ),
        ]
        return draw(st.sampled_from(choices))
    if kind == "remove_root":
        return RemoveSubtree(node_id=genome.root_node_id)
    if kind == "missing_component":
        return RemovePromptComponent(node_id=node_id, component_id=_unknown_id(draw))
    if kind == "existing_child":
        return AddChild(
            parent_id=node_id, child=draw(detached_nodes(draw(st.sampled_from(existing))))
        )
    if kind == "child_with_children":
        child = draw(detached_nodes(_fresh_id(draw, genome)))
        return AddChild(parent_id=node_id, child=dataclasses.replace(child, children=["x"]))
    if kind == "channel_to_missing_node":
        channel = draw(channels(st.just(_unknown_id(draw))))
        return AddChannel(channel=channel)
    if kind == "promote_metasystem":
        return PromoteLeafToMetasystem(
            node_id=draw(st.sampled_from(metasystems)), extracted_child_name=draw(texts)
        )
    steps = draw(st.lists(patches_for(genome, invalid=False, batch_depth=0), max_size=3))
    return Batch(patches=[*steps, RemoveSubtree(node_id=_unknown_id(draw))])


# ----------------------------------------------------------------------------- field mutation

# ``st.DataObject.draw`` or a composite's ``draw``: anything that turns a strategy into a value.
Draw = Callable[[st.SearchStrategy[Any]], Any]


def _changed(draw: Draw, value: Any, annotation: Any) -> Any:
    """A value of ``annotation`` guaranteed to differ from ``value``."""
    members = _union_members(annotation)
    if members is not None:
        inner = [m for m in members if m is not type(None)]
        if value is None:
            return draw(values_of(inner[0]))
        if type(None) in members and draw(st.booleans()):
            return None
        return _changed(draw, value, next(m for m in inner if _is_instance(value, m)))
    if annotation is bool:
        return not value
    if annotation in (int, float):
        return value + 1
    if annotation is str:
        return value + "x"
    if annotation is LeafKind:
        return LeafKind.custom(value.name + "x")
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return draw(st.sampled_from([m for m in annotation if m != value]))
    origin = typing.get_origin(annotation)
    if origin is list:
        (item,) = typing.get_args(annotation)
        if value and draw(st.booleans()):
            index = draw(st.integers(0, len(value) - 1))
            value[index] = _changed(draw, value[index], item)
        else:
            value.append(draw(values_of(item)))
        return value
    if origin is dict:
        _, item = typing.get_args(annotation)
        if value and draw(st.booleans()):
            key = draw(st.sampled_from(sorted(value)))
            value[key] = _changed(draw, value[key], item)
        else:
            value["-".join(value) + "+new"] = draw(values_of(item))
        return value
    if dataclasses.is_dataclass(annotation):
        mutate_one_field(draw, value)
        return value
    raise TypeError(f"cannot mutate {annotation!r}")


def _is_instance(value: Any, annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    return isinstance(value, origin if origin is not None else annotation)


def mutate_one_field(draw: Draw, obj: Any) -> str:
    """Change one field, somewhere inside the dataclass ``obj``, in place; return its name."""
    hints = typing.get_type_hints(type(obj))
    name = draw(st.sampled_from([f.name for f in dataclasses.fields(obj)]))
    setattr(obj, name, _changed(draw, getattr(obj, name), hints[name]))
    return name
