"""/directives/: the directives, newest first, searchable and filtered by status.

Server-rendered, plain GET links and a form: it works without JavaScript. A directive's
own page and the submit form are not built yet; each row opens the admin's page.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from organization import roles
from organization.access import page_needs
from workers.models import Directive
from workers.selectors import directive_page

MAX_QUERY_LENGTH = 200


@require_GET
@page_needs(roles.VIEW)
def directive_list(request: HttpRequest) -> HttpResponse:
    page = request.GET.get("page", "")
    listing = directive_page(
        query=request.GET.get("q", "")[:MAX_QUERY_LENGTH],
        status=request.GET.get("status") or None,
        page=int(page) if page.isdigit() and 0 < int(page) < 100_000 else 1,
    )
    return render(
        request,
        "workers/directives.html",
        {"listing": listing, "statuses": Directive.Status.values},
    )
