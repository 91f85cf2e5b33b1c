"""REST API for algedonic signals: raise one, list recent ones."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from organization import roles
from organization.api_schema import (
    INVALID,
    PAGE_NOT_FOUND,
    UNAUTHENTICATED,
    BoundedCharField,
    column_length,
)
from workers.domain.algedonic import (
    MAX_SEVERITY,
    AlgedonicSignal,
    OverridePolicy,
    SignalSource,
    Valence,
)
from workers.errors import Rejected
from workers.models import AlgedonicSignalRecord
from workers.services.algedonic import signal_raise

POLICY_FLAGS = (
    "pause_subtree",
    "resume_subtree",
    "escalate_to_root",
    "freeze_mutation",
    "require_human_confirmation",
)


class OverridePolicySerializer(serializers.Serializer[Any]):
    pause_subtree = serializers.BooleanField(default=False)
    resume_subtree = serializers.BooleanField(default=False)
    escalate_to_root = serializers.BooleanField(default=False)
    freeze_mutation = serializers.BooleanField(default=False)
    require_human_confirmation = serializers.BooleanField(default=False)

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(POLICY_FLAGS))
            if unknown:
                raise ValidationError(
                    f"Unknown policy flag {unknown[0]!r}; use {', '.join(POLICY_FLAGS)}."
                )
        return super().to_internal_value(data)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["pause_subtree"] and attrs["resume_subtree"]:
            raise ValidationError("A signal cannot both pause and resume a subtree.")
        return attrs


def _optional_id(field: str) -> BoundedCharField:
    """An id no longer than the column that stores it (PostgreSQL refuses more; SQLite not)."""
    return BoundedCharField(
        required=False,
        allow_null=True,
        default=None,
        max_length=column_length(AlgedonicSignalRecord, field),
    )


class SignalCreateSerializer(serializers.Serializer[Any]):
    # DRF removes declared fields from the class, so "source" does not shadow Field.source.
    source = serializers.ChoiceField(  # type: ignore[assignment]
        choices=[s.value for s in SignalSource], default="User"
    )
    valence = serializers.ChoiceField(choices=[v.value for v in Valence], default="Pain")
    severity = serializers.IntegerField(min_value=0, max_value=MAX_SEVERITY)
    target_node_id = _optional_id("target_node_id")
    related_task_id = _optional_id("related_task_id")
    related_suggestion_id = _optional_id("related_suggestion_id")
    message = BoundedCharField(max_length=5000)
    override_policy = OverridePolicySerializer(required=False, allow_null=True, default=None)


class SignalSerializer(serializers.ModelSerializer[AlgedonicSignalRecord]):
    class Meta:
        model = AlgedonicSignalRecord
        fields = [
            "id",
            "source",
            "valence",
            "severity",
            "target_node_id",
            "related_task_id",
            "related_suggestion_id",
            "message",
            "override_policy",
            "raised_by",
            "created_at",
        ]
        read_only_fields = fields


class SignalListCreate(generics.ListCreateAPIView[AlgedonicSignalRecord]):
    """Raise an algedonic signal (pain or pleasure) about a node, or list recent ones."""

    needs = {"GET": roles.VIEW, "POST": roles.RAISE_SIGNAL}
    serializer_class = SignalSerializer
    queryset = AlgedonicSignalRecord.objects.order_by("-created_at")

    @extend_schema(
        responses={
            200: SignalSerializer(many=True),
            400: INVALID,
            401: UNAUTHENTICATED,
            404: PAGE_NOT_FOUND,
        }
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        request={"application/json": SignalCreateSerializer},
        responses={201: SignalSerializer, 400: INVALID, 401: UNAUTHENTICATED},
    )
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        incoming = SignalCreateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        policy = data["override_policy"]
        signal = AlgedonicSignal(
            source=SignalSource(data["source"]),
            valence=Valence(data["valence"]),
            severity=data["severity"],
            target_node_id=data["target_node_id"],
            related_task_id=data["related_task_id"],
            related_suggestion_id=data["related_suggestion_id"],
            message=data["message"],
            override_policy=OverridePolicy(**policy) if policy is not None else None,
        )
        try:
            record = signal_raise(signal=signal, raised_by=f"user:{request.user.get_username()}")
        except Rejected as rejected:
            raise ValidationError(rejected.errors) from rejected
        return Response(SignalSerializer(record).data, status=status.HTTP_201_CREATED)
