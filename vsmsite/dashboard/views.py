"""``/``: the organization at a glance; ``/tree/``, the tree alone (the htmx fragment that
expands and collapses subtrees in place), and ``/panel/``, the side panel alone (what the live
page swaps in): the same templates the full page includes."""

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
    # The head first: whatever lands after it is streamed to the page and redrawn.
    ledger_seq = ledger_head_seq()
    drawing = tree_drawing(champion_tree(expanded=_expanded(request.GET)))
    return render(
        request,
        "dashboard/home.html",
        {"drawing": drawing, "ledger_seq": ledger_seq, **_side_panel()},
    )


@require_GET
@page_needs(roles.VIEW)
def panel(request: HttpRequest) -> HttpResponse:
    """The side panel alone: what overview.js swaps in when the ledger moves."""
    return render(request, "dashboard/_side.html", _side_panel())


def _side_panel() -> dict[str, object]:
    return {
        "directives": directive_overview(),
        "trials": trial_inbox(recent_limit=RECENT_TRIALS),
        "alarms": alarm_summary(),
        "budgets": budget_overview(),
        "liveness": runtime_liveness(),
    }


@require_GET
@page_needs(roles.VIEW)
def tree(request: HttpRequest) -> HttpResponse:
    drawing = tree_drawing(champion_tree(expanded=_expanded(request.GET)))
    return render(request, "dashboard/_tree.html", {"drawing": drawing})
