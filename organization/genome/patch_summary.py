"""A stored patch in a line a person reads: its kind and what it targets (pure, no Django).

The genome history page shows this beside each version, the full JSON folded under it.
It reads the stored JSON (``patch_to_json``'s shape, plus the rollback services'
``{"kind": "rollback", "to_version_id": …}``) leniently: an unknown kind or a missing field
still gives a line, never an error, since old versions keep the patches they were made with.
"""

from __future__ import annotations

import string
from typing import Any

BOOTSTRAP = "bootstrap"
BATCH_SHOWN = 3

# What each kind of patch acts on, in words, over the patch's fields (``_PatchFields``).
TARGETS: dict[str, str] = {
    "add_child": "{child.id} under {parent_id}",
    "promote_leaf_to_metasystem": "{node_id}, its work moved to {extracted_child_id}",
    "add_channel": "channel {channel.id}",
    "remove_channel": "channel {channel_id}",
    "add_prompt_component": "{node_id}: {section} {component.id}",
    "remove_prompt_component": "{node_id}: component {component_id}",
    "add_tool": "{node_id}: tool {tool.name}",
    "remove_tool": "{node_id}: tool {tool_name}",
    "set_node_status": "{node_id} → {status}",
    "rollback": "back to version {to_version_id:.8}",
}


class _PatchFields(string.Formatter):
    """``{child.id}`` reads ``patch["child"]["id"]``; a field the patch lacks reads ``?``."""

    def get_field(self, field_name: str, args: Any, kwargs: Any) -> tuple[str, str]:
        value = kwargs
        for key in field_name.split("."):
            value = value.get(key) if isinstance(value, dict) else None
        return ("?" if value is None else str(value)), field_name


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
    if kind == "batch":
        inner = [p for p in patch.get("patches") or [] if isinstance(p, dict)]
        shown = "; ".join(f"{patch_kind(p)} {patch_target(p)}".strip() for p in inner[:BATCH_SHOWN])
        more = f"; {len(inner) - BATCH_SHOWN} more" if len(inner) > BATCH_SHOWN else ""
        return f"{len(inner)} patch{'es' if len(inner) != 1 else ''}: {shown}{more}"
    if isinstance(kind, str) and kind in TARGETS:
        return _PatchFields().vformat(TARGETS[kind], (), patch)
    node = patch.get("node_id")
    return str(node) if node else ""
