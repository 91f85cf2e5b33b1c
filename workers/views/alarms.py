"""/alarms/: the algedonic signals, the paused subtrees and a Pause / Resume per node (shown
to those who may raise signals).

The page lives with the signals it raises and lists (``workers`` owns them).
It renders completely on the server (it works without JavaScript), then
follows the ledger through ``/ws/alarms/`` (``workers.consumers``), which
pushes the same section templates as out-of-band swaps. The Pause and Resume
buttons raise an algedonic signal; the pause itself happens when the
responsible controller handles it, and the page learns that from the ledger.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from organization import roles
from organization.access import page_needs
from organization.models import Node
from organization.query import query_page, query_text
from workers.domain.algedonic import AlgedonicSignal, OverridePolicy, SignalSource, Valence
from workers.errors import Rejected
from workers.selectors import alarm_context
from workers.services.algedonic import signal_raise

PAUSE_SEVERITY = 5

# Each live section of the page: its template, rendered with ``alarm_context()``.
SECTION_TEMPLATES = {
    "signals": "workers/_alarm_signals.html",
    "pauses": "workers/_alarm_pauses.html",
    "nodes": "workers/_alarm_nodes.html",
}


MAX_QUERY_LENGTH = 100


@dataclass(frozen=True)
class Listing:
    """Which page of nodes a visitor looks at: ``?page=<n>&q=<search>``, lenient."""

    page: int = 1
    query: str = ""

    @classmethod
    def of(cls, params: QueryDict) -> Listing:
        return cls(
            page=query_page(params), query=query_text(params, "q", max_length=MAX_QUERY_LENGTH)
        )

    @property
    def query_string(self) -> str:
        """``?page=..&q=..`` to carry the listing along, or "" for the first page of all."""
        params: dict[str, str] = {"page": str(self.page)} if self.page > 1 else {}
        if self.query:
            params["q"] = self.query
        return f"?{urlencode(params)}" if params else ""


def may_raise_signal(user: Any) -> bool:
    """Whether ``user`` sees the Pause and Resume buttons (the views check again on a POST)."""
    return bool(user.is_authenticated and user.has_perm(roles.RAISE_SIGNAL))


def _context(listing: Listing, *, may_raise_signal: bool) -> dict[str, object]:
    context = alarm_context(page=listing.page, query=listing.query)
    shown = Listing(page=context.node_page.number, query=listing.query)
    return {
        **{field.name: getattr(context, field.name) for field in fields(context)},
        "listing": shown.query_string,
        "may_raise_signal": may_raise_signal,
    }


def alarm_sections_html(sections: set[str], listing: Listing, *, may_raise_signal: bool) -> str:
    """The named sections as out-of-band swaps, for the websocket (no request, no CSRF field):
    ``may_raise_signal`` is the visitor's, decided when the socket connected."""
    context = {**_context(listing, may_raise_signal=may_raise_signal), "oob": True}
    return "".join(
        render_to_string(template, context)
        for name, template in SECTION_TEMPLATES.items()
        if name in sections
    )


@require_GET
@page_needs(roles.VIEW)
def alarms(request: HttpRequest) -> HttpResponse:
    context = _context(Listing.of(request.GET), may_raise_signal=may_raise_signal(request.user))
    return render(request, "workers/alarms.html", context)


@require_POST
@page_needs(roles.RAISE_SIGNAL, action="pause subtrees")
def node_pause(request: HttpRequest, node_id: str) -> HttpResponse:
    return _raise(
        request,
        node_id,
        valence=Valence.PAIN,
        severity=PAUSE_SEVERITY,
        policy=OverridePolicy(pause_subtree=True),
        verb="Pause",
    )


@require_POST
@page_needs(roles.RAISE_SIGNAL, action="resume subtrees")
def node_resume(request: HttpRequest, node_id: str) -> HttpResponse:
    return _raise(
        request,
        node_id,
        valence=Valence.PLEASURE,
        severity=1,
        policy=OverridePolicy(resume_subtree=True),
        verb="Resume",
    )


def _raise(
    request: HttpRequest,
    node_id: str,
    *,
    valence: Valence,
    severity: int,
    policy: OverridePolicy,
    verb: str,
) -> HttpResponse:
    if not Node.objects.filter(id=node_id).exists():
        raise Http404(f"No node is called {node_id!r}.")
    username = request.user.get_username()
    signal = AlgedonicSignal(
        source=SignalSource.USER,
        valence=valence,
        severity=severity,
        target_node_id=node_id,
        message=f"{verb} of {node_id} requested on /alarms/ by {username}",
        override_policy=policy,
    )
    try:
        record = signal_raise(signal=signal, raised_by=f"user:{username}")
    except Rejected as rejected:
        text = "; ".join(str(error) for errors in rejected.errors.values() for error in errors)
        return _answer(request, f"{verb} refused: {text}", level=messages.ERROR, status=400)
    return _answer(
        request,
        f"{verb} of {node_id} requested (signal {record.id[:8]}); "
        "it takes effect when its controller handles the signal.",
        level=messages.SUCCESS,
    )


def _answer(request: HttpRequest, text: str, *, level: int, status: int = 200) -> HttpResponse:
    if not getattr(request, "htmx", False):
        messages.add_message(request, level, text)
        # Back to the page of nodes the button was on.
        return redirect(reverse("workers:alarms") + Listing.of(request.GET).query_string)
    flash = {"text": text, "error": level >= messages.ERROR}
    return HttpResponse(
        render_to_string("workers/_alarm_flash.html", {"flash": flash}, request=request),
        status=status,
    )
