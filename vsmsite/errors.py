"""Error answers of the site: an outage is a 503 to retry, and the API answers in JSON.

* **An outage** (the database or the broker not answering) is not the client's fault
  and will pass: any request it breaks gets ``503 Service Unavailable`` with
  ``Retry-After``, never Django's 500 page (under DEBUG a debug page whose
  rendering can cost seconds of CPU). The error is logged with its traceback.
* **Under /api/ every error is JSON** ``{"detail": ..., "code": ...}``, as DRF's
  own are: Django's HTML 404, 500 and CSRF pages are replaced, and an unexpected
  exception in an API view is a logged JSON 500.

``ErrorsMiddleware`` sees a view's exception first (``process_exception``); an
exception raised in another middleware has already become Django's 500 response by
the time it comes back, so ``got_request_exception`` marks the request when the
exception was an outage, and the response is replaced on its way out.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

import kombu.exceptions
import redis.exceptions
from django import db
from django.conf import settings
from django.core.signals import got_request_exception
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse, JsonResponse
from rest_framework.response import Response as DRFResponse

logger = logging.getLogger(__name__)

API_PREFIX = "/api/"

# What a service that is down (or restarting) raises: the database's connection or
# operational errors, Celery's publish failing (kombu wraps the transport's error),
# Redis unreachable (the channel layer), and a refused or reset socket.
OUTAGE_ERRORS: tuple[type[BaseException], ...] = (
    db.OperationalError,
    db.InterfaceError,
    kombu.exceptions.OperationalError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    ConnectionError,
)

UNAVAILABLE_DETAIL = (
    "The service is unavailable for a moment (its database or broker is not answering)."
)
_OUTAGE_MARK = "_vsm_outage"


def is_api(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIX)


def unavailable(request: HttpRequest) -> HttpResponse:
    """A 503 that says when to come back: JSON for the API, a line of text elsewhere."""
    retry_after = str(settings.VSM_RETRY_AFTER_SECONDS)
    response: HttpResponse
    if is_api(request):
        response = JsonResponse(
            {"detail": UNAVAILABLE_DETAIL, "code": "service_unavailable"}, status=503
        )
    else:
        response = HttpResponse(
            f"{UNAVAILABLE_DETAIL} Try again in {retry_after} seconds.\n",
            status=503,
            content_type="text/plain; charset=utf-8",
        )
    response["Retry-After"] = retry_after
    return response


def _json_error(response: HttpResponse) -> JsonResponse:
    status = response.status_code
    code = {400: "bad_request", 403: "permission_denied", 404: "not_found"}.get(
        status, "error" if status < 500 else "server_error"
    )
    answer = JsonResponse({"detail": response.reason_phrase, "code": code}, status=status)
    for header in ("Allow", "Retry-After", "WWW-Authenticate"):
        if header in response:
            answer[header] = response[header]
    return answer


@receiver(got_request_exception)
def _mark_outage(sender: Any, request: HttpRequest | None = None, **kwargs: Any) -> None:
    # Sent from inside Django's except block: the exception is still the current one.
    error = sys.exc_info()[1]
    if request is not None and isinstance(error, OUTAGE_ERRORS):
        setattr(request, _OUTAGE_MARK, True)
        logger.error("%s %s: outage, answered 503", request.method, request.path)


class ErrorsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if getattr(request, _OUTAGE_MARK, False) and response.status_code == 500:
            return unavailable(request)
        if (
            is_api(request)
            and response.status_code >= 400
            and not isinstance(response, DRFResponse)
            and "json" not in response.get("Content-Type", "")
        ):
            return _json_error(response)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, OUTAGE_ERRORS):
            logger.error(
                "%s %s: outage, answered 503", request.method, request.path, exc_info=exception
            )
            return unavailable(request)
        if is_api(request):
            logger.error(
                "%s %s: unexpected error, answered 500",
                request.method,
                request.path,
                exc_info=exception,
            )
            return JsonResponse(
                {"detail": "Internal server error; it has been logged.", "code": "server_error"},
                status=500,
            )
        return None
