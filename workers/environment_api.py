"""REST API for environment signals: a CI failure, user feedback, an opportunity, from outside."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from organization import roles
from organization.api_schema import INVALID, UNAUTHENTICATED, BoundedCharField
from organization.genome import VsmChannelType
from workers.api import MetadataField
from workers.domain.channel_messages import OTHER, EnvironmentSignal, EnvironmentSignalKind
from workers.domain.environment import OUTSIDE_CHANNELS
from workers.errors import Rejected
from workers.models import ID_LENGTH
from workers.services.environment import RaisedEnvironmentSignal, environment_signal_raise

MAX_SEVERITY = 10
MAX_EVIDENCE_ITEMS = 50


@extend_schema_field({"type": "integer", "minimum": 0, "maximum": MAX_SEVERITY})
class StrictSeverityField(serializers.IntegerField):
    """An integer 0-10 sent as a JSON integer: not ``"7"``, ``7.0`` or ``true``."""

    default_error_messages = {"not_an_integer": "Must be a JSON integer."}

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("not_an_integer")
        return int(super().to_internal_value(data))


KIND_CHOICES = [k.value for k in EnvironmentSignalKind]
CHANNEL_CHOICES = [c.value for c in OUTSIDE_CHANNELS]


# Nodes have a ``kind`` too: a named component keeps the two enums apart in the schema.
@extend_schema_field(
    serializers.ChoiceField(choices=KIND_CHOICES), component_name="EnvironmentSignalKindEnum"
)
class EnvironmentSignalKindField(serializers.ChoiceField):
    pass


@extend_schema_field(
    serializers.ChoiceField(choices=CHANNEL_CHOICES), component_name="EnvironmentChannelEnum"
)
class EnvironmentChannelField(serializers.ChoiceField):
    pass


def _optional_text(max_length: int, help_text: str) -> BoundedCharField:
    return BoundedCharField(
        required=False,
        allow_null=True,
        default=None,
        min_length=1,
        max_length=max_length,
        help_text=help_text,
    )


class EnvironmentSignalCreateSerializer(serializers.Serializer[Any]):
    channel = EnvironmentChannelField(
        choices=CHANNEL_CHOICES,
        default=VsmChannelType.OPERATION_TO_ENVIRONMENT.value,
        help_text="OperationToEnvironment (default), FutureProbeToEnvironment for news about "
        "the future, EnvironmentToEnvironment for the environment talking about itself.",
    )
    kind = EnvironmentSignalKindField(choices=KIND_CHOICES)
    other_kind = _optional_text(200, "What the signal is, when kind is Other (and only then).")
    source_environment = BoundedCharField(
        min_length=1, max_length=200, help_text="Where it comes from: ci, users, market…"
    )
    target_environment = _optional_text(200, "What part of the environment it concerns.")
    observed_by_node_id = _optional_text(ID_LENGTH, "The node that observed it, if any.")
    target_node_id = _optional_text(ID_LENGTH, "The node it is about; none means the root.")
    related_task_id = _optional_text(ID_LENGTH, "A task it concerns.")
    related_suggestion_id = _optional_text(ID_LENGTH, "A gene suggestion it concerns.")
    summary = BoundedCharField(max_length=5000)
    evidence = serializers.ListField(
        child=BoundedCharField(min_length=1, max_length=2000),
        max_length=MAX_EVIDENCE_ITEMS,
        default=list,
    )
    severity = StrictSeverityField(
        required=False, allow_null=True, default=None, min_value=0, max_value=MAX_SEVERITY
    )
    metadata = MetadataField(default=dict)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        is_other = attrs["kind"] == OTHER
        if is_other and attrs["other_kind"] is None:
            raise ValidationError({"other_kind": ["Say what the signal is when kind is Other."]})
        if not is_other and attrs["other_kind"] is not None:
            raise ValidationError({"other_kind": ["Only a signal of kind Other has other_kind."]})
        return attrs


class EnvironmentSignalSerializer(serializers.Serializer[Any]):
    """A stored environment signal and where it went."""

    id = serializers.CharField()
    channel = EnvironmentChannelField(choices=CHANNEL_CHOICES)
    kind = EnvironmentSignalKindField(choices=KIND_CHOICES)
    other_kind = serializers.CharField(allow_null=True)
    source_environment = serializers.CharField()
    target_environment = serializers.CharField(allow_null=True)
    observed_by_node_id = serializers.CharField(allow_null=True)
    target_node_id = serializers.CharField(allow_null=True)
    related_task_id = serializers.CharField(allow_null=True)
    related_suggestion_id = serializers.CharField(allow_null=True)
    summary = serializers.CharField()
    evidence = serializers.ListField(child=serializers.CharField())
    severity = serializers.IntegerField(allow_null=True)
    metadata = serializers.DictField(child=serializers.CharField())
    created_at = serializers.CharField()
    handled_by_controller = serializers.CharField(
        help_text="The controller the signal was sent to."
    )
    envelope_id = serializers.CharField(help_text="The envelope that carries it there.")


def signal_body(raised: RaisedEnvironmentSignal) -> dict[str, Any]:
    signal = raised.signal
    return {
        "id": signal.id,
        "channel": raised.channel.value,
        "kind": signal.kind.value,
        "other_kind": signal.other_kind,
        "source_environment": signal.source_environment,
        "target_environment": signal.target_environment,
        "observed_by_node_id": signal.observed_by_node_id,
        "target_node_id": signal.target_node_id,
        "related_task_id": signal.related_task_id,
        "related_suggestion_id": signal.related_suggestion_id,
        "summary": signal.summary,
        "evidence": signal.evidence,
        "severity": signal.severity,
        "metadata": signal.metadata,
        "created_at": signal.created_at,
        "handled_by_controller": raised.controller_node_id,
        "envelope_id": raised.envelope_id,
    }


class EnvironmentSignalCreate(APIView):
    """Report something the environment did or said: a CI failure, user feedback, an opportunity.

    The signal goes to the controller responsible for its target (the target's parent, or the
    root), which weighs it as environment pressure when it decomposes work and grants resources.
    """

    needs = {"POST": roles.RAISE_SIGNAL}

    @extend_schema(
        request={"application/json": EnvironmentSignalCreateSerializer},
        responses={201: EnvironmentSignalSerializer, 400: INVALID, 401: UNAUTHENTICATED},
    )
    def post(self, request: Request) -> Response:
        incoming = EnvironmentSignalCreateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = dict(incoming.validated_data)
        channel = VsmChannelType(data.pop("channel"))
        signal = EnvironmentSignal(**{**data, "kind": EnvironmentSignalKind(data["kind"])})
        try:
            raised = environment_signal_raise(
                signal=signal, channel=channel, raised_by=f"user:{request.user.get_username()}"
            )
        except Rejected as rejected:
            raise ValidationError(rejected.errors) from rejected
        body = EnvironmentSignalSerializer(signal_body(raised)).data
        return Response(body, status=status.HTTP_201_CREATED)
