"""What the OpenAPI schema promises for refusals, shared by every API module."""

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
    """A CharField whose max_length applies to the text as sent, before trimming.

    DRF trims surrounding whitespace first and measures after, so a too-long
    value ending in spaces would pass although the schema promises maxLength.
    """

    def to_internal_value(self, data: Any) -> str:
        if isinstance(data, str) and self.max_length is not None and len(data) > self.max_length:
            self.fail("max_length", max_length=self.max_length)
        return str(super().to_internal_value(data))
