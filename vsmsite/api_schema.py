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
