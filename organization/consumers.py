"""``/ws/events/``: the ledger's stream of a subtree, for the nodes of the organization.

``SubtreeStreamConsumer`` is ``ledger.consumers.LedgerStreamConsumer`` with the
one thing the ledger cannot know, sitting below this app: which nodes exist
(4404 for the others).
"""

from __future__ import annotations

from ledger.consumers import LedgerStreamConsumer
from ledger.stream import in_database
from organization import roles
from organization.models import Node


@in_database
def _node_exists(node_id: str) -> bool:
    return Node.objects.filter(id=node_id).exists()


class SubtreeStreamConsumer(LedgerStreamConsumer):
    """``/ws/events/?node=<id>&since=<seq>`` for the nodes of the organization."""

    required_permission = roles.VIEW

    async def node_known(self, node_id: str) -> bool:
        return await _node_exists(node_id)
