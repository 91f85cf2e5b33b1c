"""REST API for trials: list and read them with their evidence, approve and reject them.

Thin views over ``trials.selectors`` and ``trials.services.approvals``: the services decide
who may decide and which trials may be decided; here their errors become statuses
(``trials.views.status_of``: 403, 404, 409, or 400 with the offending fields).
"""

from __future__ import annotations

import re
from typing import Any

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
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
from trials.errors import TrialNotFound
from trials.models import ID_LENGTH, Trial, TrialApproval, TrialMode
from trials.selectors import evidence_hash, trial_evidence_bundle, trial_get, trial_list
from trials.views import MAX_REASON_LENGTH, decide, error_lines, status_of
from workers.errors import IdempotencyConflict, Rejected

EVIDENCE_HASH = re.compile(r"^sha256:[0-9a-f]{64}$")
MAX_KEY_LENGTH = 200


# Named components: other serializers have a ``state``, ``mode`` or ``verdict`` of their own.
@extend_schema_field(
    serializers.ChoiceField(choices=Trial.State.choices), component_name="TrialStateEnum"
)
class TrialStateField(serializers.ChoiceField):
    pass


@extend_schema_field(
    serializers.ChoiceField(choices=TrialMode.choices), component_name="TrialModeEnum"
)
class TrialModeField(serializers.ChoiceField):
    pass


@extend_schema_field(
    serializers.ChoiceField(choices=TrialApproval.Verdict.choices),
    component_name="ApprovalVerdictEnum",
)
class ApprovalVerdictField(serializers.ChoiceField):
    pass


class TrialSerializer(serializers.ModelSerializer[Trial]):
    id = serializers.CharField(source="pk", read_only=True)
    state = TrialStateField(choices=Trial.State.choices, read_only=True)
    mode = TrialModeField(choices=TrialMode.choices, read_only=True)
    awaiting_operator = serializers.BooleanField(
        read_only=True, help_text="Pending: an operator's approval or rejection is awaited."
    )
    base_version_id = serializers.CharField(read_only=True)
    candidate_version_id = serializers.CharField(read_only=True)
    promoted_version_id = serializers.CharField(read_only=True, allow_null=True)
    # DRF removes declared fields from the class, so "source" does not shadow Field.source.
    source = serializers.CharField(  # type: ignore[assignment]
        source="suggestion.source", read_only=True
    )
    hypothesis = serializers.CharField(source="suggestion.hypothesis", read_only=True)

    class Meta:
        model = Trial
        fields = [
            "id",
            "controller_node_id",
            "state",
            "mode",
            "awaiting_operator",
            "requires_approval",
            "approved_at",
            "source",
            "hypothesis",
            "base_version_id",
            "candidate_version_id",
            "promoted_version_id",
            "traffic_share_basis_points",
            "max_tasks",
            "max_token_budget",
            "max_files_touched",
            "allowed_task_classes",
            "routed_tasks",
            "consumed_tokens",
            "candidate_traces",
            "champion_traces",
            "verdict",
            "reason",
            "watch",
            "queued_at",
            "started_at",
            "ended_at",
        ]
        read_only_fields = fields


class ApprovalSummarySerializer(serializers.ModelSerializer[TrialApproval]):
    verdict = ApprovalVerdictField(choices=TrialApproval.Verdict.choices, read_only=True)

    class Meta:
        model = TrialApproval
        fields = [
            "id",
            "trial_id",
            "verdict",
            "actor_name",
            "reason",
            "evidence_hash",
            "overrides_rule",
            "decided_at",
        ]
        read_only_fields = fields


class TrialDetailSerializer(TrialSerializer):
    evidence = serializers.SerializerMethodField(
        help_text=(
            "What an operator decides on: trial, suggestion (hypothesis, evidence, patch), "
            "genome_diff, evaluation, decision, series (both arms over time), recommendation."
        )
    )
    evidence_hash = serializers.SerializerMethodField(
        help_text="sha256 of the evidence's canonical JSON: send it with a decision."
    )
    approvals = ApprovalSummarySerializer(many=True, read_only=True)

    class Meta(TrialSerializer.Meta):
        fields = [*TrialSerializer.Meta.fields, "evidence", "evidence_hash", "approvals"]
        read_only_fields = fields

    def _bundle(self, trial: Trial) -> dict[str, Any]:
        # Built once for both fields.
        cached = getattr(self, "_bundle_of", None)
        if cached is None or cached[0] != trial.pk:
            cached = (trial.pk, trial_evidence_bundle(trial=trial))
            self._bundle_of = cached
        return cached[1]

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_evidence(self, trial: Trial) -> dict[str, Any]:
        return self._bundle(trial)

    def get_evidence_hash(self, trial: Trial) -> str:
        return evidence_hash(self._bundle(trial))


class TrialApprovalSerializer(ApprovalSummarySerializer):
    trial = TrialSerializer(read_only=True)

    class Meta(ApprovalSummarySerializer.Meta):
        fields = [*ApprovalSummarySerializer.Meta.fields, "trial"]
        read_only_fields = fields


class StrictSerializer(serializers.Serializer[Any]):
    """Refuses fields it does not know: a misspelt ``reasn`` must not pass as no reason."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)


class EvidenceHashField(BoundedCharField):
    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        if value and not EVIDENCE_HASH.match(value):
            raise ValidationError("Expected sha256:<64 lowercase hex digits>.")
        return value


class ApproveSerializer(StrictSerializer):
    reason = BoundedCharField(
        allow_blank=True,
        default="",
        max_length=MAX_REASON_LENGTH,
        help_text="Needed when the approval overrules the decision rule (an inconclusive trial).",
    )
    evidence_hash = EvidenceHashField(
        allow_blank=True,
        default="",
        max_length=71,
        help_text="The evidence_hash of the trial as read (GET /api/trials/{id}/).",
    )


class RejectSerializer(ApproveSerializer):
    reason = BoundedCharField(
        min_length=1, max_length=MAX_REASON_LENGTH, help_text="Why the trial is rejected."
    )


class TrialFilterSerializer(serializers.Serializer[Any]):
    state = serializers.ChoiceField(choices=Trial.State.choices, required=False)
    mode = serializers.ChoiceField(choices=TrialMode.choices, required=False)
    controller = serializers.CharField(max_length=ID_LENGTH, required=False)


class TrialPagination(StrictPageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


@extend_schema(
    parameters=[
        OpenApiParameter("state", str, enum=Trial.State.values, required=False),
        OpenApiParameter("mode", str, enum=TrialMode.values, required=False),
        OpenApiParameter(
            "controller",
            {"type": "string", "maxLength": ID_LENGTH},
            required=False,
            description="The controller node running the trial.",
        ),
    ],
    responses={
        200: TrialSerializer(many=True),
        400: INVALID,
        401: UNAUTHENTICATED,
        404: PAGE_NOT_FOUND,
    },
)
class TrialList(generics.ListAPIView[Trial]):
    """Trials, newest queued first; ``?state=``, ``?mode=`` and ``?controller=`` narrow them.

    Paginated like ``/api/nodes/``: ``count``, ``results`` (50 by default; ``?page_size=``
    up to 200), ``next`` and ``previous``.
    """

    serializer_class = TrialSerializer
    pagination_class = TrialPagination
    needs = {"GET": roles.VIEW}

    def get_queryset(self) -> QuerySet[Trial]:
        # A plain dict, not the QueryDict: DRF reads an empty form field as absent, so
        # ``?state=`` would list every trial instead of being refused.
        wanted = TrialFilterSerializer(data=self.request.query_params.dict())
        wanted.is_valid(raise_exception=True)
        data = wanted.validated_data
        return trial_list(
            state=data.get("state"),
            mode=data.get("mode"),
            controller_node_id=data.get("controller"),
        )


class TrialDetail(APIView):
    """One trial with its evidence bundle and the hash that names it."""

    needs = {"GET": roles.VIEW}

    @extend_schema(
        responses={200: TrialDetailSerializer, 401: UNAUTHENTICATED, 404: not_found("trial")}
    )
    def get(self, request: Request, pk: str) -> Response:
        try:
            trial = trial_get(trial_id=pk)
        except TrialNotFound as missing:
            return Response({"detail": error_lines(missing)[0]}, status=404)
        return Response(TrialDetailSerializer(trial).data)


IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    {"type": "string", "maxLength": MAX_KEY_LENGTH},
    location=OpenApiParameter.HEADER,
    required=False,
    description="Retrying a decision with the same key returns the first one.",
)


def _decision_schema(serializer: type[serializers.Serializer[Any]], what: str) -> Any:
    return extend_schema(
        request={"application/json": serializer},
        parameters=[IDEMPOTENCY_KEY],
        responses={
            200: OpenApiResponse(
                TrialApprovalSerializer,
                description=f"The {what}, or the first one for a known Idempotency-Key.",
            ),
            400: INVALID,
            401: UNAUTHENTICATED,
            403: OpenApiResponse(
                ErrorSerializer, description="The user lacks trials.approve_trial."
            ),
            404: not_found("trial"),
            409: OpenApiResponse(
                ErrorSerializer,
                description=(
                    "The trial is no longer pending, or the Idempotency-Key was used for "
                    "another request."
                ),
            ),
        },
    )


class _Decision(APIView):
    needs = {"POST": roles.APPROVE_TRIAL}
    verdict: str
    incoming: type[ApproveSerializer]

    def post(self, request: Request, pk: str) -> Response:
        incoming = self.incoming(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        key = request.headers.get("Idempotency-Key") or None
        if key is not None and len(key) > MAX_KEY_LENGTH:
            raise ValidationError({"Idempotency-Key": [f"At most {MAX_KEY_LENGTH} characters."]})
        try:
            approval = decide(
                verdict=self.verdict,
                trial_id=pk,
                user=request.user,
                reason=data["reason"],
                evidence_hash=data["evidence_hash"],
                idempotency_key=key,
            )
        except IdempotencyConflict as conflict:
            return Response({"detail": error_lines(conflict)[0]}, status=409)
        except Rejected as refused:
            code = status_of(refused)
            if code == status.HTTP_400_BAD_REQUEST:
                raise ValidationError(refused.errors) from refused
            return Response({"detail": "; ".join(error_lines(refused))}, status=code)
        if key is not None and not _answers(approval, pk, self.verdict, data):
            return Response(
                {
                    "detail": "this Idempotency-Key was already used for a different request; "
                    "use a new key for a new decision"
                },
                status=409,
            )
        approval = TrialApproval.objects.select_related("trial__suggestion").get(pk=approval.pk)
        return Response(TrialApprovalSerializer(approval).data, status=status.HTTP_200_OK)


def _answers(approval: TrialApproval, trial_id: str, verdict: str, data: dict[str, Any]) -> bool:
    """Whether a (possibly earlier) approval is the answer to this very request."""
    return (
        approval.trial_id == trial_id
        and approval.verdict == verdict
        and approval.reason == data["reason"]
        and (not data["evidence_hash"] or approval.evidence_hash == data["evidence_hash"])
    )


@_decision_schema(ApproveSerializer, "approval")
class TrialApprove(_Decision):
    """Approve a pending trial: a probation trial's traffic flows; an inconclusive trial is
    promoted (overruling the rule: a reason is required)."""

    verdict = "approve"
    incoming = ApproveSerializer


@_decision_schema(RejectSerializer, "rejection")
class TrialReject(_Decision):
    """Reject a pending trial (a reason is required): it ends ``rejected``, the champion
    untouched."""

    verdict = "reject"
    incoming = RejectSerializer
