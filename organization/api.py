"""REST API for nodes (the champion tree and each node's pause state) and genome rollback."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, cast

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import generics, serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ledger.fitness_queries import node_fitness
from organization import roles
from organization.api_schema import (
    INVALID,
    PAGE_NOT_FOUND,
    UNAUTHENTICATED,
    BoundedCharField,
    ErrorSerializer,
    StrictPageNumberPagination,
    not_found,
)
from organization.genome import GenomeError
from organization.models import GenomeVersion, Node, SubtreePause
from organization.selectors import pause_covering, subtree_pauses
from organization.services import genome_rollback


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
        # All pauses are read once per response (a list would otherwise query per node, twice).
        context = cast(dict[str, Any], self.context)  # the root serializer's dict
        if "subtree_pauses" not in context:
            context["subtree_pauses"] = subtree_pauses()
        return pause_covering(
            node_id=node.id, ancestor_ids=list(node.ancestor_ids), pauses=context["subtree_pauses"]
        )

    def get_paused(self, node: Node) -> bool:
        return self._pause(node) is not None

    @extend_schema_field(PauseSerializer(allow_null=True))
    def get_pause(self, node: Node) -> dict[str, Any] | None:
        """The pause holding this node: on itself or its nearest paused ancestor."""
        pause = self._pause(node)
        return PauseSerializer(pause).data if pause else None


class NodePagination(StrictPageNumberPagination):
    """Pages of nodes: an organization can have ten thousand, a response never does."""

    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 500


@extend_schema(
    responses={
        200: NodeSerializer(many=True),
        400: INVALID,
        401: UNAUTHENTICATED,
        404: PAGE_NOT_FOUND,
    }
)
class NodeList(generics.ListAPIView[Node]):
    """The champion's nodes in tree order (parents before children), each with its pause state.

    Paginated: ``count`` is the number of nodes, ``results`` one page of them (100 by
    default; ``?page_size=`` up to 500), ``next`` and ``previous`` the neighbouring pages'
    URLs; ``?page=2`` asks for the second page, and a page past the end is a 404.
    """

    serializer_class = NodeSerializer
    pagination_class = NodePagination
    needs = {"GET": roles.VIEW}
    queryset = Node.objects.order_by("position")


@extend_schema(responses={200: NodeSerializer, 401: UNAUTHENTICATED, 404: not_found("node")})
class NodeDetail(generics.RetrieveAPIView[Node]):
    """One node: kind, derived capabilities, and whether (and by which signal) it is paused."""

    needs = {"GET": roles.VIEW}

    serializer_class = NodeSerializer
    queryset = Node.objects.all()


class DirectFitnessSerializer(serializers.Serializer[Any]):
    node_id = serializers.CharField()
    task_count = serializers.IntegerField()
    merged_count = serializers.IntegerField()
    reverted_count = serializers.IntegerField()
    regression_count = serializers.IntegerField()
    human_override_count = serializers.IntegerField()
    tokens = serializers.IntegerField()
    latency_ms = serializers.IntegerField()
    raw_score = serializers.FloatField()
    complexity_penalty = serializers.FloatField()
    final_score = serializers.FloatField()


class AttributedFitnessSerializer(serializers.Serializer[Any]):
    node_id = serializers.CharField()
    direct_task_count = serializers.IntegerField()
    descendant_task_count = serializers.IntegerField()
    subtree_task_count = serializers.IntegerField()
    direct_tokens = serializers.IntegerField()
    subtree_tokens = serializers.IntegerField()
    direct_latency_ms = serializers.IntegerField()
    subtree_latency_ms = serializers.IntegerField()
    attribution_weight_total = serializers.FloatField()
    direct_score = serializers.FloatField()
    descendant_score = serializers.FloatField()
    raw_score = serializers.FloatField()
    complexity_penalty = serializers.FloatField()
    final_score = serializers.FloatField()


class FitnessSerializer(serializers.Serializer[Any]):
    node_id = serializers.CharField()
    since = serializers.DateTimeField(allow_null=True)
    until = serializers.DateTimeField(allow_null=True)
    direct = DirectFitnessSerializer()
    attributed = AttributedFitnessSerializer()


class FitnessWindowSerializer(serializers.Serializer[Any]):
    since = serializers.DateTimeField(required=False, default=None)
    until = serializers.DateTimeField(required=False, default=None)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["since"] and attrs["until"] and attrs["since"] >= attrs["until"]:
            raise ValidationError({"until": ["Must be later than since."]})
        return attrs


class NodeFitnessView(APIView):
    """Direct and attributed fitness (docs/rules/fitness.md) of a node over a window of traces."""

    needs = {"GET": roles.VIEW}

    @extend_schema(
        parameters=[
            OpenApiParameter("since", str, description="ISO 8601; traces started at or after."),
            OpenApiParameter("until", str, description="ISO 8601; traces started before."),
        ],
        responses={
            200: FitnessSerializer,
            400: INVALID,
            401: UNAUTHENTICATED,
            404: not_found("node"),
        },
    )
    def get(self, request: Request, pk: str) -> Response:
        node = get_object_or_404(Node, pk=pk)
        window = FitnessWindowSerializer(data=request.query_params)
        window.is_valid(raise_exception=True)
        fitness = node_fitness(node_id=node.id, **window.validated_data)
        return Response(
            FitnessSerializer(
                {
                    "node_id": node.id,
                    "since": fitness.since,
                    "until": fitness.until,
                    "direct": asdict(fitness.direct),
                    "attributed": asdict(fitness.attributed),
                }
            ).data
        )


class GenomeVersionSerializer(serializers.ModelSerializer[GenomeVersion]):
    parent_id = serializers.CharField(read_only=True, allow_null=True)

    class Meta:
        model = GenomeVersion
        fields = ["id", "content_hash", "parent_id", "patch", "actor", "reason", "created_at"]
        read_only_fields = fields


class RollbackSerializer(serializers.Serializer[Any]):
    to_version_id = BoundedCharField(
        min_length=1, max_length=64, help_text="An earlier champion version (never a candidate)."
    )
    reason = BoundedCharField(min_length=1, max_length=500, help_text="Why, for the ledger.")

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)


class GenomeRollback(APIView):
    """Make a copy of an earlier champion version the champion: a new version, recorded
    (``genome_rolled_back``); nothing in between is lost, the history only grows."""

    needs = {"POST": roles.ROLLBACK_GENOME}

    @extend_schema(
        request={"application/json": RollbackSerializer},
        responses={
            201: GenomeVersionSerializer,
            400: INVALID,
            401: UNAUTHENTICATED,
            403: OpenApiResponse(
                ErrorSerializer, description="The user lacks organization.rollback_genome."
            ),
        },
    )
    def post(self, request: Request) -> Response:
        incoming = RollbackSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        try:
            version = genome_rollback(
                to_version_id=data["to_version_id"],
                actor=f"user:{request.user.get_username()}",
                reason=data["reason"],
            )
        except GenomeVersion.DoesNotExist as missing:
            raise ValidationError(
                {"to_version_id": [f"No genome version is called {data['to_version_id']!r}."]}
            ) from missing
        except GenomeError as refused:
            raise ValidationError({"to_version_id": [str(refused)]}) from refused
        return Response(GenomeVersionSerializer(version).data, status=status.HTTP_201_CREATED)
