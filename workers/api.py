"""REST API for directives: thin views over ``workers.services.directives``."""

from __future__ import annotations

from typing import Any, cast

from django.db.models import QuerySet
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

from ledger.models import TaskTrace
from ledger.selectors import directive_latest_traces
from organization import roles
from organization.api_schema import (
    INVALID,
    PAGE_NOT_FOUND,
    UNAUTHENTICATED,
    BoundedCharField,
    ErrorSerializer,
    column_length,
    not_found,
)
from workers.domain import input_rules
from workers.errors import IdempotencyConflict, Rejected
from workers.models import Directive, Task
from workers.selectors import directive_waiting_to_send, directives_with_waiting
from workers.services.directives import directive_submit


@extend_schema_field(
    {
        "type": "object",
        "maxProperties": input_rules.MAX_METADATA_KEYS,
        "additionalProperties": {
            "oneOf": [
                {"type": "string", "maxLength": input_rules.MAX_METADATA_VALUE_LENGTH},
                {"type": "number"},
                {"type": "boolean"},
            ]
        },
        "description": (
            f"At most {input_rules.MAX_METADATA_KEYS} keys, each of 1 to "
            f"{input_rules.MAX_METADATA_KEY_LENGTH} characters."
        ),
    }
)
class MetadataField(serializers.DictField):
    """A string→string map; JSON booleans and numbers are accepted and written as strings.

    The limits (keys, key and value lengths, text a column can store) are
    ``workers.domain.input_rules``', checked before anything echoes a key back.
    """

    child = BoundedCharField(allow_blank=True, max_length=input_rules.MAX_METADATA_VALUE_LENGTH)

    def to_internal_value(self, data: Any) -> dict[str, str]:
        if not isinstance(data, dict):
            raise ValidationError('Expected an object of string values, like {"key": "value"}.')
        if problems := input_rules.metadata_errors(data):
            raise ValidationError(problems)
        converted: dict[str, Any] = {}
        for key, value in data.items():
            if isinstance(value, bool):
                converted[key] = "true" if value else "false"
            elif isinstance(value, int | float):
                converted[key] = str(value)
            elif isinstance(value, dict | list) or value is None:
                raise ValidationError({key: ["Must be a string, number or boolean."]})
            else:
                converted[key] = value
        return super().to_internal_value(converted)


class AcceptanceItemSerializer(serializers.Serializer[Any]):
    name = BoundedCharField(min_length=1, max_length=input_rules.MAX_NAME_LENGTH)
    description = BoundedCharField(
        allow_blank=True, default="", max_length=input_rules.MAX_ITEM_LENGTH
    )
    verifier = BoundedCharField(
        required=False,
        allow_null=True,
        default=None,
        min_length=1,
        max_length=input_rules.MAX_ITEM_LENGTH,
        help_text=(
            "The name of a registered acceptance verifier (an admin registers their commands); "
            "its command runs in the task workspace, and a non-zero exit fails the task."
        ),
    )


class PlannedTaskSerializer(serializers.Serializer[Any]):
    key = serializers.SlugField(max_length=100)
    title = BoundedCharField(min_length=1, max_length=column_length(Task, "title"))
    goal = BoundedCharField(allow_blank=True, default="", max_length=input_rules.MAX_GOAL_LENGTH)
    depends_on = serializers.ListField(child=serializers.SlugField(max_length=100), default=list)
    metadata = MetadataField(default=dict)


class DirectiveCreateSerializer(serializers.Serializer[Any]):
    title = BoundedCharField(min_length=1, max_length=column_length(Directive, "title"))
    body = BoundedCharField(allow_blank=True, default="", max_length=input_rules.MAX_BODY_LENGTH)
    constraints = serializers.ListField(
        child=BoundedCharField(min_length=1, max_length=input_rules.MAX_ITEM_LENGTH), default=list
    )
    desired_state = BoundedCharField(
        required=False,
        allow_null=True,
        default=None,
        min_length=1,
        max_length=input_rules.MAX_BODY_LENGTH,
    )
    risk = serializers.ChoiceField(choices=Directive.Risk.choices, default=Directive.Risk.MEDIUM)
    metadata = MetadataField(
        default=dict,
        help_text=(
            "Routing and shape hints: required_capability, requires_code_write, target_child, "
            "decompose, trial_approved, task_class."
        ),
    )
    acceptance = AcceptanceItemSerializer(many=True, default=list)
    tasks = PlannedTaskSerializer(  # type: ignore[call-arg]  # the stubs lack ListSerializer's
        many=True,
        default=list,
        max_length=input_rules.MAX_PLANNED_TASKS,
        help_text="Optional plan: tasks with keys and dependencies.",
    )


class TraceSummarySerializer(serializers.ModelSerializer[TaskTrace]):
    class Meta:
        model = TaskTrace
        fields = [
            "id",
            "assigned_node_id",
            "responsible_ancestor_ids",
            "latency_ms",
            "input_tokens",
            "output_tokens",
            "tests_run",
            "tests_passed",
            "outcome_score",
        ]


# Directives and tasks both have a ``status`` with different choices. Named components keep
# the two enums apart in the schema (drf-spectacular would otherwise warn about the collision
# and invent a hashed name such as ``Status7d8Enum`` for one of them).
@extend_schema_field(
    serializers.ChoiceField(choices=Directive.Status.choices), component_name="DirectiveStatusEnum"
)
class DirectiveStatusField(serializers.ChoiceField):
    pass


@extend_schema_field(
    serializers.ChoiceField(choices=Task.Status.choices), component_name="TaskStatusEnum"
)
class TaskStatusField(serializers.ChoiceField):
    pass


class TaskSerializer(serializers.ModelSerializer[Task]):
    status = TaskStatusField(choices=Task.Status.choices, read_only=True)
    trace = serializers.SerializerMethodField()

    class Meta:
        model = Task
        fields = [
            "id",
            "title",
            "status",
            "dependencies",
            "assigned_node_id",
            "executed_by",
            "result_summary",
            "packet",
            "result",
            "trace",
        ]

    @extend_schema_field(TraceSummarySerializer(allow_null=True))
    def get_trace(self, task: Task) -> dict[str, Any] | None:
        """The task's latest trace; a directive's traces are read in one query, not per task."""
        context = cast(dict[str, Any], self.context)  # the root serializer's dict
        by_directive = context.setdefault("latest_traces", {})
        if task.directive_id not in by_directive:
            by_directive[task.directive_id] = directive_latest_traces(
                directive_id=task.directive_id
            )
        trace = by_directive[task.directive_id].get(task.id)
        return TraceSummarySerializer(trace).data if trace else None


class DirectiveSerializer(serializers.ModelSerializer[Directive]):
    status = DirectiveStatusField(choices=Directive.Status.choices, read_only=True)
    waiting_to_send = serializers.SerializerMethodField()

    class Meta:
        model = Directive
        fields = [
            "id",
            "title",
            "body",
            "constraints",
            "desired_state",
            "risk",
            "metadata",
            "acceptance",
            "planned_tasks",
            "status",
            "result_summary",
            "root_node_id",
            "genome_id",
            "created_at",
            "completed_at",
            "waiting_to_send",
        ]
        read_only_fields = fields

    @extend_schema_field(
        {
            "type": "integer",
            "minimum": 0,
            "description": "Messages of this directive's work that are committed but not on "
            "their way (the broker was down or lost them): the outbox sweeper sends them "
            "again. 0 when nothing waits.",
        }
    )
    def get_waiting_to_send(self, directive: Directive) -> int:
        counted = getattr(directive, "waiting_to_send", None)  # the views annotate it
        if counted is None:
            return directive_waiting_to_send(directive_id=directive.id)
        return int(counted)


class DirectiveDetailSerializer(DirectiveSerializer):
    tasks = TaskSerializer(many=True, read_only=True)

    class Meta(DirectiveSerializer.Meta):
        fields = [*DirectiveSerializer.Meta.fields, "tasks"]
        read_only_fields = fields


NOT_FOUND = not_found("directive")


STATUS_FILTER = OpenApiParameter(
    "status", str, enum=[choice for choice, _ in Directive.Status.choices], required=False
)
IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    {"type": "string", "maxLength": 200},
    location=OpenApiParameter.HEADER,
    required=False,
    description="Retrying a POST with the same key returns the first directive.",
)


class DirectiveListCreate(generics.ListCreateAPIView[Directive]):
    """Submit directives to the organization and list them, newest first."""

    needs = {"GET": roles.VIEW, "POST": roles.SUBMIT_DIRECTIVE}
    serializer_class = DirectiveSerializer

    def get_queryset(self) -> QuerySet[Directive]:
        directives = directives_with_waiting(Directive.objects.order_by("-created_at"))
        wanted = self.request.query_params.get("status")
        if wanted is not None:
            if wanted not in Directive.Status.values:
                raise ValidationError(
                    {
                        "status": [
                            f"Unknown status; use one of {', '.join(Directive.Status.values)}."
                        ]
                    }
                )
            directives = directives.filter(status=wanted)
        return directives

    @extend_schema(
        parameters=[STATUS_FILTER],
        responses={
            200: DirectiveSerializer(many=True),
            400: INVALID,
            401: UNAUTHENTICATED,
            404: PAGE_NOT_FOUND,
        },
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        # The API speaks JSON: plans, acceptance items and metadata have no form encoding.
        request={"application/json": DirectiveCreateSerializer},
        parameters=[IDEMPOTENCY_KEY],
        responses={
            201: DirectiveDetailSerializer,
            200: OpenApiResponse(
                DirectiveDetailSerializer,
                description="A retry with a known Idempotency-Key: the first directive.",
            ),
            400: INVALID,
            401: UNAUTHENTICATED,
            409: OpenApiResponse(
                ErrorSerializer,
                description="The Idempotency-Key was already used for a different request.",
            ),
        },
    )
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        incoming = DirectiveCreateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        key = request.headers.get("Idempotency-Key") or None
        if key is not None and len(key) > 200:
            raise ValidationError({"Idempotency-Key": ["At most 200 characters."]})
        try:
            submission = directive_submit(
                title=data["title"],
                body=data["body"],
                constraints=data["constraints"],
                desired_state=data["desired_state"],
                risk=data["risk"],
                metadata=data["metadata"],
                acceptance=data["acceptance"],
                planned_tasks=data["tasks"],
                origin="api",
                user=request.user,
                idempotency_key=key,
            )
        except IdempotencyConflict as conflict:
            detail = conflict.errors["idempotency_key"][0]
            return Response({"detail": detail}, status=status.HTTP_409_CONFLICT)
        except Rejected as rejected:
            raise ValidationError(rejected.errors) from rejected
        body = DirectiveDetailSerializer(submission.directive).data
        code = status.HTTP_201_CREATED if submission.created else status.HTTP_200_OK
        return Response(body, status=code)


@extend_schema(responses={200: DirectiveDetailSerializer, 401: UNAUTHENTICATED, 404: NOT_FOUND})
class DirectiveDetail(generics.RetrieveAPIView[Directive]):
    """One directive with its task tree: packets, assigned nodes, results, traces."""

    needs = {"GET": roles.VIEW}
    serializer_class = DirectiveDetailSerializer

    def get_queryset(self) -> QuerySet[Directive]:
        # Built per request: what is waiting depends on the time of the read.
        return directives_with_waiting(Directive.objects.prefetch_related("tasks"))
