"""What the OpenAPI schema promises for refusals, shared by every API module.

It lives in the lowest app with an API, so every app above may import it (apps import
only downward: docs/architecture.md, "Apps")."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers


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
