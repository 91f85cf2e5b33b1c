"""A stored patch in a line a person reads: its kind and what it targets (pure, no Django).

The genome history page shows this beside each version, the full JSON folded under it.
It reads the stored JSON (``patch_to_json``'s shape, plus the rollback services'
``{"kind": "rollback", "to_version_id": …}``) leniently: an unknown kind or a missing field
still gives a line, never an error, since old versions keep the patches they were made with.
"""

from __future__ import annotations

from typing import Any

BOOTSTRAP = "bootstrap"
BATCH_SHOWN = 3


def patch_kind(patch: Any) -> str:
    """The patch's kind, ``bootstrap`` for a first version (no patch)."""
    if patch is None:
        return BOOTSTRAP
    if isinstance(patch, dict):
        return str(patch.get("kind") or "?")
    return "?"


def patch_target(patch: Any) -> str:
    """What the patch acts on, in words: ``leaf-x under root``, ``channel c-1``, …"""
    if not isinstance(patch, dict):
        return "the first version" if patch is None else ""
    kind = patch.get("kind")
    child, channel = _mapping(patch, "child"), _mapping(patch, "channel")
    component, tool = _mapping(patch, "component"), _mapping(patch, "tool")
    node = patch.get("node_id")
    if kind == "add_child":
        return f"{child.get('id', '?')} under {patch.get('parent_id', '?')}"
    if kind == "promote_leaf_to_metasystem":
        return f"{node}, its work moved to {patch.get('extracted_child_id', '?')}"
    if kind == "add_channel":
        return f"channel {channel.get('id', '?')}"
    if kind == "remove_channel":
        return f"channel {patch.get('channel_id', '?')}"
    if kind == "add_prompt_component":
        return f"{node}: {patch.get('section', '?')} {component.get('id', '?')}"
    if kind == "remove_prompt_component":
        return f"{node}: component {patch.get('component_id', '?')}"
    if kind == "add_tool":
        return f"{node}: tool {tool.get('name', '?')}"
    if kind == "remove_tool":
        return f"{node}: tool {patch.get('tool_name', '?')}"
    if kind == "set_node_status":
        return f"{node} → {patch.get('status', '?')}"
    if kind == "rollback":
        return f"back to version {str(patch.get('to_version_id', '?'))[:8]}"
    if kind == "batch":
        inner = [p for p in patch.get("patches") or [] if isinstance(p, dict)]
        shown = "; ".join(f"{patch_kind(p)} {patch_target(p)}".strip() for p in inner[:BATCH_SHOWN])
        more = f"; {len(inner) - BATCH_SHOWN} more" if len(inner) > BATCH_SHOWN else ""
        return f"{len(inner)} patch{'es' if len(inner) != 1 else ''}: {shown}{more}"
    return str(node) if node else ""


def _mapping(patch: dict[str, Any], key: str) -> dict[str, Any]:
    value = patch.get(key)
    return value if isinstance(value, dict) else {}
