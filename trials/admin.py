"""Admin for trials: read everything; approve and reject through the services.

Suggestions, audit runs and approvals are read-only (only the services write them). A
trial's page shows its evidence bundle (``trials/_bundle.html``) and, to an operator with
``trials.approve_trial``, Approve and Reject buttons leading to a form with a reason; the
list has the same two actions for several trials at once. Either way the service decides.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse

from ledger.admin import ReadOnlyAdmin, pretty_json
from trials.errors import TrialNotFound
from trials.models import (
    ArchiveRecord,
    AuditRun,
    EvolutionGeneration,
    GeneSuggestion,
    Trial,
    TrialApproval,
)
from trials.selectors import evidence_hash, trial_evidence_bundle, trial_get
from trials.views import APPROVE_PERMISSION, VERDICTS, bundle_context, decide, error_lines
from workers.errors import Rejected

REJECT_NEEDS_REASON = "A rejection needs a reason."


@admin.register(Trial)
class TrialAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = [
        "short_id",
        "controller_node_id",
        "state",
        "mode",
        "awaiting",
        "verdict",
        "candidate_traces",
        "champion_traces",
        "queued_at",
    ]
    list_filter = ["state", "mode", "requires_approval", "verdict"]
    list_select_related = ["suggestion"]
    search_fields = ["=suggestion__id", "controller_node_id", "suggestion__hypothesis", "reason"]
    date_hierarchy = "queued_at"
    actions = ["approve_trials", "reject_trials"]
    change_form_template = "admin/trials/trial/change_form.html"
    exclude = ["evaluation", "metadata", "allowed_task_classes", "champion_totals"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [
            *(f.name for f in Trial._meta.fields if f.name not in self.exclude),
            "evaluation_pretty",
            "metadata_pretty",
        ]

    # Rows change only through the services: nobody adds, edits or deletes them here.
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_approve_trial_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm(APPROVE_PERMISSION))

    @admin.display(description="trial", ordering="suggestion_id")
    def short_id(self, obj: Trial) -> str:
        return obj.id[:8]

    @admin.display(description="awaiting an operator", boolean=True)
    def awaiting(self, obj: Trial) -> bool:
        return obj.awaiting_operator

    @admin.display(description="evaluation")
    def evaluation_pretty(self, obj: Trial) -> str:
        return pretty_json(obj.evaluation)

    @admin.display(description="metadata")
    def metadata_pretty(self, obj: Trial) -> str:
        return pretty_json(obj.metadata)

    # -- the trial's page: its evidence, and the buttons ------------------------------------

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        extra = dict(extra_context or {})
        trial = Trial.objects.select_related("suggestion").filter(pk=object_id).first()
        if trial is not None and self.has_view_permission(request, trial):
            extra.update(bundle_context(trial))
            extra["may_decide"] = trial.awaiting_operator and self.has_approve_trial_permission(
                request
            )
        return super().change_view(request, object_id, form_url, extra_context=extra)

    def get_urls(self) -> list[URLPattern]:
        decide_view = self.admin_site.admin_view(self.decide_view)
        return [
            path(
                "<path:object_id>/decide/<str:verdict>/",
                decide_view,
                name="trials_trial_decide",
            ),
            *super().get_urls(),
        ]

    def decide_view(self, request: HttpRequest, object_id: str, verdict: str) -> HttpResponse:
        """A reason and a confirmation for one trial (GET), then the service's answer (POST)."""
        if verdict not in VERDICTS:
            raise Http404("No such decision.")
        if not self.has_approve_trial_permission(request):
            raise PermissionDenied
        try:
            trial = trial_get(trial_id=object_id)
        except TrialNotFound as missing:
            raise Http404(str(missing)) from missing
        errors: list[str] = []
        reason = ""
        shown_hash = evidence_hash(trial_evidence_bundle(trial=trial))
        if request.method == "POST":
            reason = request.POST.get("reason", "").strip()
            shown_hash = request.POST.get("evidence_hash", "") or shown_hash
            if verdict == "reject" and not reason:
                errors = [REJECT_NEEDS_REASON]
            else:
                try:
                    decide(
                        verdict=verdict,
                        trial_id=trial.id,
                        user=request.user,
                        reason=reason,
                        evidence_hash=shown_hash,
                    )
                except Rejected as refused:
                    errors = error_lines(refused)
                else:
                    self.message_user(
                        request, f"Trial {trial.id[:8]} {verdict}d.", messages.SUCCESS
                    )
                    return HttpResponseRedirect(
                        reverse("admin:trials_trial_change", args=[trial.pk])
                    )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"{verdict.capitalize()} trial {trial.id[:8]}",
            "trial": trial,
            "rows": [(trial, shown_hash)],
            "verdict": verdict,
            "errors": errors,
            "reason": reason,
            "single": True,
        }
        return TemplateResponse(
            request, "admin/trials/trial/decide.html", context, status=400 if errors else 200
        )

    # -- the list's actions -----------------------------------------------------------------

    @admin.action(description="Approve selected trials", permissions=["approve_trial"])
    def approve_trials(
        self, request: HttpRequest, queryset: QuerySet[Trial]
    ) -> HttpResponse | None:
        return self._decide_many(request, queryset, verdict="approve")

    @admin.action(description="Reject selected trials", permissions=["approve_trial"])
    def reject_trials(self, request: HttpRequest, queryset: QuerySet[Trial]) -> HttpResponse | None:
        return self._decide_many(request, queryset, verdict="reject")

    def _decide_many(
        self, request: HttpRequest, queryset: QuerySet[Trial], *, verdict: str
    ) -> HttpResponse | None:
        """An intermediate page with a reason (the first time), then one service call each."""
        trials = list(queryset.select_related("suggestion").order_by("queued_at"))
        reason = request.POST.get("reason", "").strip()
        errors: list[str] = []
        if "confirm" in request.POST:
            if verdict == "reject" and not reason:
                errors = [REJECT_NEEDS_REASON]
            else:
                for trial in trials:
                    self._decide_one(request, trial, verdict=verdict, reason=reason)
                return None  # back to the list, with a message per trial
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"{verdict.capitalize()} {len(trials)} trial(s)",
            "rows": [(t, evidence_hash(trial_evidence_bundle(trial=t))) for t in trials],
            "verdict": verdict,
            "errors": errors,
            "reason": reason,
            "action": f"{verdict}_trials",
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "single": False,
        }
        return TemplateResponse(
            request, "admin/trials/trial/decide.html", context, status=400 if errors else 200
        )

    def _decide_one(self, request: HttpRequest, trial: Trial, *, verdict: str, reason: str) -> None:
        try:
            decide(
                verdict=verdict,
                trial_id=trial.id,
                user=request.user,
                reason=reason,
                evidence_hash=request.POST.get(f"evidence_hash:{trial.id}", ""),
            )
        except Rejected as refused:
            text = "; ".join(error_lines(refused))
            self.message_user(
                request, f"Trial {trial.id[:8]} not {verdict}d: {text}", messages.ERROR
            )
        else:
            self.message_user(request, f"Trial {trial.id[:8]} {verdict}d.", messages.SUCCESS)


@admin.register(GeneSuggestion)
class GeneSuggestionAdmin(ReadOnlyAdmin):
    list_display = ["id", "source", "target_node_id", "trial_mode", "created_at"]
    list_filter = ["source", "trial_mode"]
    list_select_related = ["audit_run"]
    search_fields = ["=id", "target_node_id", "suggested_by_node_id", "hypothesis"]
    date_hierarchy = "created_at"
    exclude = [
        "patch",
        "evidence",
        "safety_limits",
        "measurement_plan",
        "rollback_plan",
        "metadata",
    ]
    readonly_fields = [
        "id",
        "suggested_by_node_id",
        "target_node_id",
        "source",
        "hypothesis",
        "trial_mode",
        "audit_run",
        "created_at",
        "patch_pretty",
        "evidence_pretty",
        "limits_pretty",
    ]

    @admin.display(description="patch")
    def patch_pretty(self, obj: GeneSuggestion) -> str:
        return pretty_json(obj.patch)

    @admin.display(description="evidence")
    def evidence_pretty(self, obj: GeneSuggestion) -> str:
        return pretty_json(obj.evidence)

    @admin.display(description="limits and plans")
    def limits_pretty(self, obj: GeneSuggestion) -> str:
        return pretty_json(
            {
                "safety_limits": obj.safety_limits,
                "measurement_plan": obj.measurement_plan,
                "rollback_plan": obj.rollback_plan,
                "metadata": obj.metadata,
            }
        )


@admin.register(AuditRun)
class AuditRunAdmin(ReadOnlyAdmin):
    list_display = ["started_at", "controller_node_id", "trigger", "trace_count", "failed_count"]
    list_filter = ["trigger"]
    search_fields = ["=id", "controller_node_id"]
    date_hierarchy = "started_at"
    exclude = ["findings", "trace_ids"]
    readonly_fields = [
        "id",
        "controller_node_id",
        "trigger",
        "started_at",
        "completed_at",
        "trace_count",
        "failed_count",
        "genome_id",
        "findings_pretty",
    ]

    @admin.display(description="findings")
    def findings_pretty(self, obj: AuditRun) -> str:
        return pretty_json(obj.findings)


@admin.register(TrialApproval)
class TrialApprovalAdmin(ReadOnlyAdmin):
    """Operators' decisions: written only by the services, with the evidence they saw."""

    list_display = ["decided_at", "trial", "verdict", "actor_name", "overrides_rule", "reason"]
    list_filter = ["verdict", "overrides_rule"]
    list_select_related = ["trial"]
    search_fields = ["=id", "=trial__suggestion__id", "actor_name", "reason", "evidence_hash"]
    date_hierarchy = "decided_at"


@admin.register(ArchiveRecord)
class ArchiveRecordAdmin(ReadOnlyAdmin):
    """Every candidate an activation evaluated, and what happened once its trial ended."""

    list_display = [
        "created_at",
        "trial",
        "controller_node_id",
        "status",
        "selection_score",
        "frontier_size",
        "outcome",
        "realised_score",
    ]
    list_filter = ["status", "policy", "outcome"]
    list_select_related = ["trial"]
    search_fields = ["=trial__suggestion__id", "=activation_id", "controller_node_id"]
    date_hierarchy = "created_at"


@admin.register(EvolutionGeneration)
class EvolutionGenerationAdmin(ReadOnlyAdmin):
    """Each controller's generations: parents, operators, offspring (written by the service)."""

    list_display = ["created_at", "controller_node_id", "generation", "policy", "offspring"]
    list_filter = ["controller_node_id", "policy"]
    search_fields = ["=id", "controller_node_id"]
    date_hierarchy = "created_at"

    @admin.display(description="offspring")
    def offspring(self, generation: EvolutionGeneration) -> int:
        return len(generation.offspring_trial_ids)
