"""``POST /directives/new/``: the submit form of /directives/, through the same service as
``POST /api/directives/`` (``workers.services.directives.directive_submit``).

A valid directive is stored and sent to the root, and the browser goes to its page. Anything
the form or the service refuses comes back on the field it concerns, with a 400, and nothing
is stored. With htmx the form alone is swapped (errors) or the page changes (``HX-Redirect``);
without it the whole list page comes back with the form filled in.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from organization import roles
from organization.access import page_needs
from workers.errors import IdempotencyConflict, Rejected
from workers.forms import DirectiveSubmitForm
from workers.services.directives import directive_submit
from workers.views.directives import list_context

ORIGIN = "dashboard"


@require_POST
@page_needs(roles.SUBMIT_DIRECTIVE, action="submit directives")
def directive_submit_form(request: HttpRequest) -> HttpResponse:
    form = DirectiveSubmitForm(request.POST)
    if form.is_valid():
        try:
            submission = directive_submit(
                **form.submission(),
                origin=ORIGIN,
                user=request.user,
                idempotency_key=form.cleaned_data["form_key"] or None,
            )
        except IdempotencyConflict:
            form.add_error(
                None,
                "This form already submitted a different directive; it is ready for a new "
                "one: submit it again.",
            )
            form.renew_key()
        except Rejected as rejected:
            form.add_rejection(rejected)
        else:
            url = reverse("workers:directive", args=[submission.directive.id])
            if getattr(request, "htmx", False):
                return HttpResponse(headers={"HX-Redirect": url})
            return redirect(url)
    if getattr(request, "htmx", False):
        return render(request, "workers/_directive_form.html", {"form": form}, status=400)
    return render(request, "workers/directives.html", list_context(request, form=form), status=400)
