"""/trials/: the operator's inbox of trials, each trial's evidence, Approve and Reject.

Everything renders completely on the server (works without JavaScript); with htmx the
decision forms swap the sections in place, and ``/ws/trials/`` (``trials.consumers``)
pushes the same sections as out-of-band swaps when trial events reach the ledger. The
decisions are the services' (``trials.services.lifecycle``): a view only turns their
errors into a status and an inline message.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from organization import roles
from organization.access import page_needs
from trials.charts import arm_chart
from trials.errors import ApprovalDenied, TrialConflict, TrialNotFound
from trials.models import Trial, TrialApproval
from trials.selectors import (
    evidence_hash,
    trial_approvals,
    trial_evidence_bundle,
    trial_get,
    trial_inbox,
)
from trials.services.approvals import trial_approve, trial_reject
from workers.errors import Rejected

APPROVE_PERMISSION = "trials.approve_trial"
MAX_REASON_LENGTH = 5000
VERDICTS = ("approve", "reject")

# The live sections of /trials/, each rendered with ``inbox_context()``.
SECTION_TEMPLATES = {
    "pending": "trials/_inbox_pending.html",
    "active": "trials/_inbox_active.html",
    "recent": "trials/_inbox_recent.html",
}


def may_decide(user: Any) -> bool:
    """Whether ``user`` sees the decision buttons (the service checks again on a POST)."""
    return bool(user.is_authenticated and user.has_perm(APPROVE_PERMISSION))


# -- what the pages show ----------------------------------------------------------------------


def bundle_context(trial: Trial) -> dict[str, Any]:
    """The evidence bundle of ``trial`` with what ``trials/_bundle.html`` draws from it."""
    bundle = trial_evidence_bundle(trial=trial)
    return {
        "bundle": bundle,
        "evidence_hash": evidence_hash(bundle),
        "chart": arm_chart(bundle["series"]),
        "decision_arms": [
            ("candidate", bundle["decision"]["candidate"]),
            ("champion", bundle["decision"]["champion"]),
        ],
        "patch_json": _pretty(bundle["suggestion"]["patch"]),
        "limits_json": _pretty(
            {
                "limits": bundle["trial"]["limits"],
                "rule": bundle["trial"]["rule"],
                "safety_limits": bundle["suggestion"]["safety_limits"],
                "measurement_plan": bundle["suggestion"]["measurement_plan"],
                "rollback_plan": bundle["suggestion"]["rollback_plan"],
            }
        ),
        "evaluation_json": _pretty(bundle["evaluation"]),
    }


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True)


@dataclass(frozen=True)
class PendingRow:
    """A trial awaiting an operator, with its decision form's state."""

    trial: Trial
    shown_hash: str  # the evidence the row shows now: the form sends it back
    errors: list[str]
    reason: str


def inbox_context(
    *,
    may_decide: bool,
    errors: dict[str, list[str]] | None = None,
    reasons: dict[str, str] | None = None,
) -> dict[str, Any]:
    inbox = trial_inbox()
    errors, reasons = errors or {}, reasons or {}
    return {
        "pending_rows": [
            PendingRow(
                trial=trial,
                shown_hash=evidence_hash(trial_evidence_bundle(trial=trial)),
                errors=errors.get(trial.id, []),
                reason=reasons.get(trial.id, ""),
            )
            for trial in inbox.pending
        ],
        "active": inbox.active,
        "recent": inbox.recent,
        "may_decide": may_decide,
    }


def inbox_sections_html(sections: set[str], *, may_decide: bool) -> str:
    """The named sections as out-of-band swaps, for the websocket (no request, no CSRF field)."""
    context = {**inbox_context(may_decide=may_decide), "oob": True}
    return "".join(
        render_to_string(template, context)
        for name, template in SECTION_TEMPLATES.items()
        if name in sections
    )


def detail_state_html(trial_id: str, *, may_decide: bool) -> str:
    """The trial's part of /trials/<id>/ as an out-of-band swap, for the websocket."""
    trial = trial_get(trial_id=trial_id)
    context = {
        **bundle_context(trial),
        "trial": trial,
        "approvals": trial_approvals(trial=trial),
        "may_decide": may_decide,
        "oob": True,
    }
    return render_to_string("trials/_detail_state.html", context)


# -- pages ------------------------------------------------------------------------------------


@require_GET
@page_needs(roles.VIEW)
def inbox(request: HttpRequest) -> HttpResponse:
    return render(request, "trials/inbox.html", inbox_context(may_decide=may_decide(request.user)))


@require_GET
@page_needs(roles.VIEW)
def detail(request: HttpRequest, trial_id: str) -> HttpResponse:
    return _detail_page(request, _trial_or_404(trial_id))


def _trial_or_404(trial_id: str) -> Trial:
    try:
        return trial_get(trial_id=trial_id)
    except TrialNotFound as missing:
        raise Http404(str(missing)) from missing


def _detail_page(
    request: HttpRequest,
    trial: Trial,
    *,
    errors: list[str] | None = None,
    reason: str = "",
    status: int = 200,
) -> HttpResponse:
    context = {
        **bundle_context(trial),
        "trial": trial,
        "approvals": trial_approvals(trial=trial),
        "may_decide": may_decide(request.user),
        "errors": errors or [],
        "reason": reason,
    }
    template = (
        "trials/_detail_state.html" if getattr(request, "htmx", False) else "trials/detail.html"
    )
    return render(request, template, context, status=status)


# -- decisions --------------------------------------------------------------------------------


@require_POST
@page_needs(roles.VIEW)
def approve(request: HttpRequest, trial_id: str) -> HttpResponse:
    return _decide(request, trial_id, verdict="approve")


@require_POST
@page_needs(roles.VIEW)
def reject(request: HttpRequest, trial_id: str) -> HttpResponse:
    return _decide(request, trial_id, verdict="reject")


def decide(
    *,
    verdict: str,
    trial_id: str,
    user: Any,
    reason: str,
    evidence_hash: str = "",
    idempotency_key: str | None = None,
) -> TrialApproval:
    """Approve or reject through the service; its errors pass through."""
    if verdict == "approve":
        return trial_approve(
            trial_id=trial_id,
            user=user,
            reason=reason,
            evidence_hash=evidence_hash,
            idempotency_key=idempotency_key,
        )
    return trial_reject(
        trial_id=trial_id,
        user=user,
        reason=reason,
        evidence_hash=evidence_hash,
        idempotency_key=idempotency_key,
    )


def status_of(error: Rejected) -> int:
    """The HTTP status of a refused decision (trials/errors.py)."""
    if isinstance(error, ApprovalDenied):
        return 403
    if isinstance(error, TrialNotFound):
        return 404
    if isinstance(error, TrialConflict):
        return 409
    return 400


def error_lines(error: Rejected) -> list[str]:
    return [message for messages_ in error.errors.values() for message in messages_]


def _decide(request: HttpRequest, trial_id: str, *, verdict: str) -> HttpResponse:
    trial = _trial_or_404(trial_id)
    reason = request.POST.get("reason", "").strip()
    shown_hash = request.POST.get("evidence_hash", "")
    from_inbox = request.POST.get("view") == "inbox"
    problem: Rejected | None = None
    if len(reason) > MAX_REASON_LENGTH:
        problem = Rejected({"reason": [f"At most {MAX_REASON_LENGTH} characters."]})
    else:  # the service checks the permission first, then whether a reason is needed
        try:
            decide(
                verdict=verdict,
                trial_id=trial.id,
                user=request.user,
                reason=reason,
                evidence_hash=shown_hash,
            )
        except Rejected as rejected:
            problem = rejected
    if problem is not None:
        return _refused(request, trial, problem, reason=reason, from_inbox=from_inbox)
    done = f"Trial {trial.id[:8]} {verdict}d."
    if getattr(request, "htmx", False):
        if from_inbox:
            return _inbox_answer(request, flash={"text": done, "error": False})
        return _detail_page(request, trial_get(trial_id=trial.id))
    messages.success(request, done)
    return redirect(
        reverse("trials:inbox") if from_inbox else reverse("trials:detail", args=[trial.id])
    )


def _refused(
    request: HttpRequest, trial: Trial, problem: Rejected, *, reason: str, from_inbox: bool
) -> HttpResponse:
    status = status_of(problem)
    lines = error_lines(problem)
    if from_inbox:
        return _inbox_answer(
            request,
            errors={trial.id: lines},
            reasons={trial.id: reason},
            flash={"text": "; ".join(lines), "error": True},
            status=status,
        )
    return _detail_page(request, trial, errors=lines, reason=reason, status=status)


def _inbox_answer(
    request: HttpRequest,
    *,
    flash: dict[str, Any],
    errors: dict[str, list[str]] | None = None,
    reasons: dict[str, str] | None = None,
    status: int = 200,
) -> HttpResponse:
    context = {
        **inbox_context(may_decide=may_decide(request.user), errors=errors, reasons=reasons),
        "flash": flash,
    }
    template = "trials/_inbox_body.html" if getattr(request, "htmx", False) else "trials/inbox.html"
    return render(request, template, context, status=status)
