"""Small organizations and envelopes for the pure channel tests."""

from __future__ import annotations

from typing import Any

from organization.genome import (
    LeafOperationSpec,
    NodeLifecycleStatus,
    OrganizationalGenome,
    ViableNode,
    VsmChannelType,
    add_child,
)
from workers.domain.messages import MessageEnvelope

ROOT = "root"
FRONTEND = "frontend-coder"
BACKEND = "backend-coder"
PLATFORM = "platform-system"
PLATFORM_CODER = "platform-coder"
RETIRED = "retired-coder"


def organization() -> OrganizationalGenome:
    """root → frontend-coder, backend-coder, platform-system → platform-coder; retired-coder."""
    genome = OrganizationalGenome.from_root(ViableNode.metasystem(ROOT, id=ROOT))
    for name in (FRONTEND, BACKEND):
        add_child(genome, ROOT, ViableNode.leaf(name, LeafOperationSpec.coding(), id=name))
    add_child(genome, ROOT, ViableNode.metasystem(PLATFORM, id=PLATFORM))
    add_child(
        genome,
        PLATFORM,
        ViableNode.leaf(PLATFORM_CODER, LeafOperationSpec.coding(), id=PLATFORM_CODER),
    )
    retired = ViableNode.leaf(RETIRED, LeafOperationSpec.coding(), id=RETIRED)
    retired.status = NodeLifecycleStatus.RETIRED
    add_child(genome, ROOT, retired)
    return genome


def envelope(channel: VsmChannelType, payload_type: str, **fields: Any) -> MessageEnvelope:
    defaults: dict[str, Any] = {
        "id": "env-1",
        "source_node_id": FRONTEND,
        "target_node_id": ROOT,
        "correlation_id": "corr-1",
        "causation_id": "cause-1",
    }
    return MessageEnvelope(
        channel_type=channel, payload_type=payload_type, **{**defaults, **fields}
    )
