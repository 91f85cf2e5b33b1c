"""/api/schema/ is generated once per process and served to every caller after that."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client
from drf_spectacular.generators import SchemaGenerator

from tests import factories
from vsmsite.schema import schema_cache_clear


@pytest.fixture
def generations(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    schema_cache_clear()
    calls: list[int] = []
    original = SchemaGenerator.get_schema

    def counted(self: SchemaGenerator, *args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(SchemaGenerator, "get_schema", counted)
    yield calls
    schema_cache_clear()


@pytest.mark.django_db
def test_the_schema_is_generated_once_and_the_same_for_every_caller(
    generations: list[int],
) -> None:
    anonymous = Client()
    first = anonymous.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    again = anonymous.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    admin = Client()
    admin.force_login(factories.admin())
    as_admin = admin.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    as_yaml = anonymous.get("/api/schema/")

    assert [first.status_code, again.status_code, as_admin.status_code] == [200, 200, 200]
    assert first.json()["paths"]["/api/directives/"]
    assert again.json() == first.json() == as_admin.json()
    assert as_yaml.status_code == 200 and b"/api/directives/:" in as_yaml.content
    assert first["Content-Disposition"].endswith('.json"')
    assert as_yaml["Content-Disposition"].endswith('.yaml"')
    assert len(generations) == 1
