"""REST API for nodes: the champion tree and each node's pause state."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import generics, serializers

from organization.models import Node, SubtreePause
from organization.selectors import pause_covering
from vsmsite.api_schema import PAGE_NOT_FOUND, UNAUTHENTICATED, not_found


class PauseSerializer(serializers.ModelSerializer[SubtreePause]):
    target_node_id = serializers.CharField(source="node_id")

    class Meta:
        model = SubtreePause
        fields = [
            "target_node_id",
            "signal_id",
            "paused_at",
            "paused_by",
            "reason",
            "severity",
            "require_human_confirmation",
        ]


class NodeSerializer(serializers.ModelSerializer[Node]):
    paused = serializers.SerializerMethodField()
    pause = serializers.SerializerMethodField()

    class Meta:
        model = Node
        fields = [
            "id",
            "name",
            "parent",
            "depth",
            "ancestor_ids",
            "kind",
            "leaf_kind",
            "status",
            "capabilities",
            "model_provider",
            "model_name",
            "paused",
            "pause",
        ]

    def _pause(self, node: Node) -> SubtreePause | None:
        return pause_covering(node_id=node.id, ancestor_ids=list(node.ancestor_ids))

    def get_paused(self, node: Node) -> bool:
        return self._pause(node) is not None

    @extend_schema_field(PauseSerializer(allow_null=True))
    def get_pause(self, node: Node) -> dict[str, Any] | None:
        """The pause holding this node: on itself or its nearest paused ancestor."""
        pause = self._pause(node)
        return PauseSerializer(pause).data if pause else None


@extend_schema(
    responses={200: NodeSerializer(many=True), 401: UNAUTHENTICATED, 404: PAGE_NOT_FOUND}
)
class NodeList(generics.ListAPIView[Node]):
    """The champion's nodes in tree order, each with its pause state."""

    serializer_class = NodeSerializer
    queryset = Node.objects.order_by("position")


@extend_schema(responses={200: NodeSerializer, 401: UNAUTHENTICATED, 404: not_found("node")})
class NodeDetail(generics.RetrieveAPIView[Node]):
    """One node: kind, derived capabilities, and whether (and by which signal) it is paused."""

    serializer_class = NodeSerializer
    queryset = Node.objects.all()
