"""/directives/: the directives, newest first, searchable and filtered by status, and the form
that submits one (``workers.views.directive_submit`` handles its POST).

Server-rendered, plain GET links and forms: it works without JavaScript. Each row opens the
directive's page (``workers.views.directive_detail``).
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from organization import roles
from organization.access import page_needs
from organization.query import query_page, query_text
from workers.forms import DirectiveSubmitForm
from workers.models import Directive
from workers.selectors import directive_page

MAX_QUERY_LENGTH = 200


def list_context(
    request: HttpRequest, *, form: DirectiveSubmitForm | None = None
) -> dict[str, Any]:
    """The list as ``?q=&status=&page=`` asks for it (leniently), and the submit form."""
    listing = directive_page(
        query=query_text(request.GET, "q", max_length=MAX_QUERY_LENGTH),
        status=request.GET.get("status") or None,
        page=query_page(request.GET, below=100_000),
    )
    return {
        "listing": listing,
        "statuses": Directive.Status.values,
        "form": form if form is not None else DirectiveSubmitForm(),
    }


@require_GET
@page_needs(roles.VIEW)
def directive_list(request: HttpRequest) -> HttpResponse:
    return render(request, "workers/directives.html", list_context(request))
