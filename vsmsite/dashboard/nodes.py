"""``/nodes/<id>/``: one node's place in the tree, its genes, its subtree's traces, its budgets,
and Pause / Resume.

Pause and Resume raise the same algedonic signal ``POST /api/signals/`` would (through
``workers.services.algedonic.signal_raise``); the pause itself happens when the responsible
controller handles it, as on /alarms/.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from ledger.fitness_queries import node_fitness_series
from ledger.selectors import TRACE_OUTCOMES, subtree_recent_events, subtree_trace_page
from organization import roles
from organization.access import page_needs
from organization.genome import ViableNode
from organization.models import Node
from organization.query import query_page
from organization.selectors import champion_node, node_channels, node_place
from workers.domain.algedonic import AlgedonicSignal, OverridePolicy, SignalSource, Valence
from workers.errors import Rejected
from workers.selectors import budget_overview
from workers.services.algedonic import signal_raise

PAUSE_SEVERITY = 5
NODE_EDGES = 20
NODE_EVENTS = 20


@require_GET
@page_needs(roles.VIEW)
def node_page(request: HttpRequest, node_id: str) -> HttpResponse:
    place = node_place(node_id=node_id)
    if place is None:
        return render(request, "dashboard/node_missing.html", {"node_id": node_id}, status=404)
    traces = subtree_trace_page(
        node_id=node_id,
        outcome=request.GET.get("outcome") or None,
        page=query_page(request.GET, below=10_000),
    )
    genes = champion_node(node_id=node_id)
    fitness = node_fitness_series(node_id=node_id)
    events, head_seq = subtree_recent_events(node_id=node_id, limit=NODE_EVENTS)
    channels, channel_count = node_channels(node_id=node_id)
    return render(
        request,
        "dashboard/node.html",
        {
            "place": place,
            "node": place.node,
            "gene_sections": gene_sections(genes) if genes is not None else [],
            "genes": genes,
            "traces": traces,
            "outcomes": TRACE_OUTCOMES,
            "budgets": budget_overview(node_id=node_id, limit=NODE_EDGES),
            "fitness": fitness,
            "events": events,
            "channels": channels,
            "channel_count": channel_count,
            # Where node-events.js starts following /ws/events/ for this subtree.
            "head_seq": head_seq,
            # For the chart (static/dashboard/fitness.js): seconds since the epoch, scores.
            "fitness_series": {
                "time": [point.until.timestamp() for point in fitness],
                "direct": [point.direct for point in fitness],
                "attributed": [point.attributed for point in fitness],
            },
        },
    )


def gene_sections(node: ViableNode) -> list[tuple[str, list[tuple[str, str]]]]:
    """The node's genes as titled lists of (name, value) for a definition list."""
    leaf = node.leaf_operation
    return [
        ("System 5 (identity and policy)", _pairs(node.system_5)),
        ("System 4 (the future)", _pairs(node.system_4)),
        ("System 3 (the present)", _pairs(node.system_3)),
        ("System 3* (audit)", _pairs(node.system_3_star)),
        ("Leaf operation", _pairs(leaf)),
        ("Model", _pairs(node.model)),
        ("Context policy", _pairs(node.context_policy)),
        ("Permissions", _pairs(node.permissions)),
    ]


def _pairs(section: Any) -> list[tuple[str, str]]:
    return [
        (field.name.replace("_", " "), _shown(getattr(section, field.name)))
        for field in dataclasses.fields(section)
    ]


def _shown(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, list | tuple):
        return ", ".join(_shown(item) for item in value) or "—"
    if isinstance(value, dict):
        return ", ".join(f"{key}={item}" for key, item in value.items()) or "—"
    return str(value)


@require_POST
@page_needs(roles.RAISE_SIGNAL, action="pause subtrees")
def pause(request: HttpRequest, node_id: str) -> HttpResponse:
    return _raise(request, node_id, resume=False)


@require_POST
@page_needs(roles.RAISE_SIGNAL, action="resume subtrees")
def resume(request: HttpRequest, node_id: str) -> HttpResponse:
    return _raise(request, node_id, resume=True)


def _raise(request: HttpRequest, node_id: str, *, resume: bool) -> HttpResponse:
    if not Node.objects.filter(id=node_id).exists():
        raise Http404(f"No node is called {node_id!r}.")
    verb, username = ("Resume" if resume else "Pause"), request.user.get_username()
    signal = AlgedonicSignal(
        source=SignalSource.USER,
        valence=Valence.PLEASURE if resume else Valence.PAIN,
        severity=1 if resume else PAUSE_SEVERITY,
        target_node_id=node_id,
        message=f"{verb} of {node_id} requested on its node page by {username}",
        override_policy=OverridePolicy(resume_subtree=True)
        if resume
        else OverridePolicy(pause_subtree=True),
    )
    try:
        record = signal_raise(signal=signal, raised_by=f"user:{username}")
    except Rejected as rejected:
        text = "; ".join(str(error) for errors in rejected.errors.values() for error in errors)
        messages.error(request, f"{verb} refused: {text}")
    else:
        messages.success(
            request,
            f"{verb} of {node_id} requested (signal {record.id[:8]}); "
            "it takes effect when its controller handles the signal.",
        )
    return redirect("dashboard:node", node_id=node_id)
