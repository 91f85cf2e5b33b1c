"""What the OpenAPI schema promises for refusals, shared by every API module.

It lives in the lowest app with an API, so every app above may import it (apps import
only downward: docs/architecture.md, "Apps")."""

from __future__ import annotations

import re
from typing import Any

from django.db.models import Model
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request


class ErrorSerializer(serializers.Serializer[Any]):
    """The body DRF gives a refused request that is not about particular fields."""

    detail = serializers.CharField()


INVALID = OpenApiResponse(
    OpenApiTypes.OBJECT,
    description=(
        "The request was refused and nothing changed: each offending field (or `detail`, "
        "for a body that is not JSON) maps to the reasons."
    ),
)
UNAUTHENTICATED = OpenApiResponse(
    ErrorSerializer, description="No valid token (`Authorization: Token …`) or session."
)
PAGE_NOT_FOUND = OpenApiResponse(ErrorSerializer, description="No such page.")


def document_forbidden(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """A drf-spectacular hook: every operation that answers 401 may answer 403 as well.

    Each API view names the permission its methods need (``organization.access``); a user
    without it gets a 403 whose ``detail`` names the permission and the roles that hold it.
    """
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.get("responses", {})
            if "401" in responses and "403" not in responses:
                responses["403"] = {
                    **responses["401"],
                    "description": (
                        "Logged in without the permission this operation needs: `detail` "
                        'names it and the roles that hold it (docs/operations.md, "Roles").'
                    ),
                }
    return result


def not_found(what: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorSerializer, description=f"No such {what}.")


class BoundedCharField(serializers.CharField):
    """A CharField that takes only JSON strings, and whose max_length applies to the text as sent.

    DRF would turn a number into a string and trims surrounding whitespace
    before measuring, so a number, or a too-long value ending in spaces, would
    pass although the schema promises a string of at most maxLength.
    """

    default_error_messages = {"not_a_string": "Must be a string."}

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("not_a_string")
        if self.max_length is not None and len(data) > self.max_length:
            self.fail("max_length", max_length=self.max_length)
        return str(super().to_internal_value(data))


def column_length(model: type[Model], field: str) -> int:
    """The most characters ``model.field``'s column holds: the bound an edge checks, so that
    SQLite (which stores any length) refuses exactly what PostgreSQL's ``varchar`` would."""
    length = getattr(model._meta.get_field(field), "max_length", None)
    if length is None:
        raise TypeError(f"{model.__name__}.{field} has no max_length")
    return int(length)


POSITIVE_INTEGER = re.compile(r"[1-9][0-9]{0,17}")


class StrictPageNumberPagination(PageNumberPagination):
    """Pages numbered 1, 2, …, and nothing else.

    DRF's pagination reads ``?page=last``, ``?page=`` (the first page), `` 1`` or an Arabic-Indic
    digit (Python's ``int`` takes both) as page numbers and a malformed ``?page_size=`` as the
    default, although the schema promises an integer: here anything but a positive integer
    in ASCII digits is a 400 that says so. A page past the end stays a 404; a page size over
    the maximum is read as the maximum (documented in the parameter).
    """

    last_page_strings = ()
    invalid_page_message = "No page {page_number}: {message}."

    def paginate_queryset(self, queryset: Any, request: Request, view: Any = None) -> Any:
        self._strict(request, self.page_query_param)
        if self.page_size_query_param:
            self._strict(request, self.page_size_query_param)
        return super().paginate_queryset(queryset, request, view)

    def _strict(self, request: Request, name: str) -> None:
        if name in request.query_params:
            value = request.query_params[name]
            if not POSITIVE_INTEGER.fullmatch(value):
                message = f"Must be a positive integer (1, 2, …), not {value!r}."
                raise ValidationError({name: [message]})

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 1}
                parameter["description"] = "A page number, from 1; past the last page is a 404."
            elif parameter["name"] == self.page_size_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 1}
                parameter["description"] = (
                    f"Results per page (default {self.page_size}); more than "
                    f"{self.max_page_size} is read as {self.max_page_size}."
                )
        return parameters
