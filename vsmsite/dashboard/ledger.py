"""``/ledger/``: the explorer (filter, jump to a seq, follow correlation and causation), and the
whole-ledger check run by a worker with its progress (``/ledger/checks/<id>/``)."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from ledger.kinds import ALL_KINDS
from ledger.models import LedgerVerification
from ledger.selectors import EventFilter, ledger_event_page, ledger_head_seq
from ledger.tasks import verify_send
from ledger.verification_runs import VerificationBusy, verification_request
from organization import roles
from organization.access import page_needs
from organization.query import query_int, query_text

FILTER_FIELDS = ("kind", "node", "directive", "trial", "correlation", "causation", "actor")
MAX_FILTER_LENGTH = 200


def _filter(params: QueryDict) -> EventFilter:
    values = {
        name: query_text(params, name, max_length=MAX_FILTER_LENGTH) for name in FILTER_FIELDS
    }
    return EventFilter(
        kind=values["kind"],
        node_id=values["node"],
        directive_id=values["directive"],
        trial_id=values["trial"],
        correlation_id=values["correlation"],
        causation_id=values["causation"],
        actor=values["actor"],
    )


@require_GET
@page_needs(roles.VIEW)
def explorer(request: HttpRequest) -> HttpResponse:
    where = _filter(request.GET)
    jump = query_int(request.GET, "seq")
    before, after = query_int(request.GET, "before"), query_int(request.GET, "after")
    if jump is not None:
        before, after = jump + 1, None  # the page that starts at the seq asked for
    page = ledger_event_page(where=where, before=before, after=after)
    kept = {name: request.GET[name] for name in FILTER_FIELDS if request.GET.get(name)}
    return render(
        request,
        "dashboard/ledger.html",
        {
            "page": page,
            "jump": jump,
            "filters": kept,
            "kept_query": urlencode(kept),
            "kinds": ALL_KINDS,
            "head_seq": ledger_head_seq(),
            "latest_check": LedgerVerification.objects.first(),
        },
    )


@require_POST
@page_needs(roles.VERIFY_LEDGER, action="run a check of the whole ledger")
def check_start(request: HttpRequest) -> HttpResponse:
    try:
        run = verification_request(
            requested_by=f"user:{request.user.get_username()}", send=verify_send
        )
    except VerificationBusy as busy:
        messages.info(request, "A check is already under way: here is its progress.")
        run = busy.running
    return redirect("dashboard:ledger-check", run_id=run.id)


@require_GET
@page_needs(roles.VIEW)
def check_progress(request: HttpRequest, run_id: str) -> HttpResponse:
    run = LedgerVerification.objects.filter(id=run_id).first()
    if run is None:
        raise Http404(f"No ledger check is called {run_id!r}.")
    partial = request.headers.get("HX-Request") == "true"
    template = "dashboard/_ledger_check.html" if partial else "dashboard/ledger_check.html"
    return render(request, template, {"run": run})
