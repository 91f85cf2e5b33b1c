"""The shared layout: one navigation on every page, the current page marked, no CDN."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.test import Client

from organization.services import genome_bootstrap
from tests import factories
from workers.models import Directive

NAVIGATION = ["Overview", "Directives", "Genome", "Ledger", "Trials", "Alarms"]


@pytest.fixture
def operator_client() -> Client:
    genome_bootstrap(template="nested", actor="operator:test")
    Directive.objects.create(
        id="layout-directive", title="A directive", root_node_id="root-codebase-system"
    )
    client = Client()
    client.force_login(factories.admin())
    return client


def main_navigation(html: str) -> str:
    found = re.search(r'<nav aria-label="Main">(.*?)</nav>', html, re.S)
    assert found, "the page has no main navigation"
    return found.group(1)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("url", "current"),
    [
        ("/", "Overview"),
        ("/nodes/backend-system/", "Overview"),
        ("/directives/", "Directives"),
        ("/directives/layout-directive/", "Directives"),
        ("/genome/", "Genome"),
        ("/genome/diff/", "Genome"),
        ("/ledger/", "Ledger"),
        ("/trials/", "Trials"),
        ("/alarms/", "Alarms"),
    ],
)
def test_every_page_has_the_same_navigation_with_its_own_entry_marked(
    operator_client: Client, url: str, current: str
) -> None:
    html = operator_client.get(url).content.decode()
    navigation = main_navigation(html)
    labels = re.findall(r">([A-Za-z]+)</a>", navigation)
    assert labels == NAVIGATION
    assert re.findall(r'aria-current="page">([A-Za-z]+)<', navigation) == [current]
    assert 'href="#content"' in html, "a keyboard user can skip the navigation"


@pytest.mark.django_db
def test_the_pages_load_nothing_from_another_host(operator_client: Client) -> None:
    pages = ["/", "/alarms/", "/trials/", "/nodes/backend-system/", "/directives/", "/genome/diff/"]
    for url in [*pages, "/directives/layout-directive/", "/ledger/"]:
        html = operator_client.get(url).content.decode()
        sources = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert sources
        assert not [s for s in sources if s.startswith(("http:", "https:", "//"))], url


@pytest.mark.django_db
def test_the_stylesheet_has_a_dark_scheme() -> None:
    from django.contrib.staticfiles import finders

    path = finders.find("site.css")
    assert path is not None
    assert "@media (prefers-color-scheme: dark)" in Path(path).read_text()
