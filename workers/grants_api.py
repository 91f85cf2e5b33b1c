"""REST API for resource grants: an operator adds tokens to a parent→child edge for the epoch."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from organization import roles
from organization.api_schema import INVALID, UNAUTHENTICATED
from workers.models import ID_LENGTH
from workers.selectors import epoch_summary
from workers.services.bargaining import GrantRejected, grant_extra_tokens

# Far above any real budget, and inside a signed 64-bit column after many grants.
MAX_EXTRA_TOKENS = 10**12
MAX_EXTRA_MESSAGES = 10**6


class GrantCreateSerializer(serializers.Serializer[Any]):
    controller_node_id = serializers.CharField(
        max_length=ID_LENGTH, help_text="The System 3 controller: the parent of the edge."
    )
    requester_node_id = serializers.CharField(
        max_length=ID_LENGTH, help_text="Its direct child whose budget is raised."
    )
    tokens = serializers.IntegerField(
        min_value=1, max_value=MAX_EXTRA_TOKENS, help_text="Tokens added for this epoch."
    )
    messages = serializers.IntegerField(
        min_value=0,
        max_value=MAX_EXTRA_MESSAGES,
        default=0,
        help_text="Grants added to the edge's message budget for this epoch (if it has one).",
    )


class EpochGrantSerializer(serializers.Serializer[Any]):
    """The edge's accounting for the current epoch, after the grant."""

    epoch_key = serializers.CharField()
    controller_node_id = serializers.CharField()
    requester_node_id = serializers.CharField()
    budget_tokens = serializers.IntegerField(
        allow_null=True, help_text="Genome budget plus extras; null when the edge is unlimited."
    )
    message_budget = serializers.IntegerField(allow_null=True)
    extra_tokens = serializers.IntegerField()
    extra_messages = serializers.IntegerField()
    allocation_count = serializers.IntegerField()
    allocated_tokens = serializers.IntegerField()
    used_tokens = serializers.IntegerField()
    remaining_tokens = serializers.IntegerField(allow_null=True)
    remaining_messages = serializers.IntegerField(allow_null=True)
    released_task_count = serializers.IntegerField(
        help_text="Deferred tasks of this edge sent back to their controller by this grant."
    )


class GrantCreate(APIView):
    """Grant extra tokens to a parent→child edge for the current epoch.

    Tasks the child deferred for want of budget go back to the controller at once.
    """

    needs = {"POST": roles.GRANT_BUDGET}

    @extend_schema(
        request={"application/json": GrantCreateSerializer},
        responses={201: EpochGrantSerializer, 400: INVALID, 401: UNAUTHENTICATED},
    )
    def post(self, request: Request) -> Response:
        incoming = GrantCreateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        try:
            epoch, released = grant_extra_tokens(
                controller_node_id=data["controller_node_id"],
                requester_node_id=data["requester_node_id"],
                tokens=data["tokens"],
                messages=data["messages"],
                actor=f"user:{request.user.get_username()}",
            )
        except GrantRejected as rejected:
            raise ValidationError(rejected.errors) from rejected
        body = EpochGrantSerializer(epoch_summary(epoch=epoch, released=released)).data
        return Response(body, status=status.HTTP_201_CREATED)
