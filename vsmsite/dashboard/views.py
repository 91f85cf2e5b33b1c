"""``/``: the organization at a glance, and ``/tree/``, the tree alone (the htmx fragment that
expands and collapses subtrees in place; the same template the full page includes)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import render
from django.views.decorators.http import require_GET

from ledger.selectors import ledger_head_seq
from organization import roles
from organization.access import page_needs
from organization.selectors import TREE_EXPANDED_LIMIT, champion_tree
from trials.selectors import trial_inbox
from vsmsite.dashboard.drawing import tree_drawing
from workers.selectors import alarm_summary, budget_overview, directive_overview, runtime_liveness

RECENT_TRIALS = 5


def _expanded(params: QueryDict) -> tuple[str, ...]:
    """``?expand=<id>&expand=<id>``: the subtrees opened past the default depth (lenient)."""
    return tuple(value for value in params.getlist("expand") if value)[:TREE_EXPANDED_LIMIT]


@require_GET
@page_needs(roles.VIEW)
def home(request: HttpRequest) -> HttpResponse:
    drawing = tree_drawing(champion_tree(expanded=_expanded(request.GET)))
    return render(
        request,
        "dashboard/home.html",
        {
            "drawing": drawing,
            "directives": directive_overview(),
            "trials": trial_inbox(recent_limit=RECENT_TRIALS),
            "alarms": alarm_summary(),
            "budgets": budget_overview(),
            "liveness": runtime_liveness(),
            # Where the page's live tree starts following the ledger (overview.js).
            "ledger_seq": ledger_head_seq(),
        },
    )


@require_GET
@page_needs(roles.VIEW)
def tree(request: HttpRequest) -> HttpResponse:
    drawing = tree_drawing(champion_tree(expanded=_expanded(request.GET)))
    return render(request, "dashboard/_tree.html", {"drawing": drawing})
