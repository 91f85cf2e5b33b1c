"""``/api/schema/``: the OpenAPI document, generated once per process.

drf-spectacular's view builds the schema afresh on every request (150 to 500 ms of walking every
view and serializer). The API's shape is fixed for the life of a process and the document is
the public one (``SERVE_PUBLIC``: the same for every caller), so the first request's schema is
kept, per API version and URL configuration, and served to everyone after it. An anonymous
client can no longer make the web process do that work on every request.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.views import SpectacularAPIView
from rest_framework.request import Request
from rest_framework.response import Response

_schemas: dict[tuple[str | None, str, str | None], dict[str, Any]] = {}


class CachedSpectacularAPIView(SpectacularAPIView):
    def _get_schema_response(self, request: Request) -> Response:
        if not self.serve_public:  # a schema cut to the caller's permissions: never shared
            response: Response = super()._get_schema_response(request)  # type: ignore[no-untyped-call]
            return response
        version = self.api_version or request.version or self._version(request)
        key = (version, str(self.urlconf or settings.ROOT_URLCONF), request.GET.get("lang"))
        schema = _schemas.get(key)
        if schema is None:
            generator = self.generator_class(
                urlconf=self.urlconf, api_version=version, patterns=self.patterns
            )
            schema = generator.get_schema(request=request, public=True)  # type: ignore[no-untyped-call]
            _schemas[key] = schema
        filename: str = self._get_filename(request, version)  # type: ignore[no-untyped-call]
        return Response(
            data=schema, headers={"Content-Disposition": f'inline; filename="{filename}"'}
        )

    def _version(self, request: Request) -> str | None:
        version: str | None = self._get_version_parameter(request)  # type: ignore[no-untyped-call]
        return version


def schema_cache_clear() -> None:
    """Forget the kept schemas (for tests that change the API's shape)."""
    _schemas.clear()
