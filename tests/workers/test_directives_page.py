"""/directives/: the directives an operator submitted, newest first, searchable, by status."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from django.test import Client

from tests import factories
from workers.models import Directive, Task


@pytest.fixture
def operator() -> User:
    return factories.admin()


@pytest.fixture
def operator_client(operator: User) -> Client:
    client = Client()
    client.force_login(operator)
    return client


def directive(title: str, status: str, operator: User, *, tasks: tuple[str, ...] = ()) -> Directive:
    made = Directive.objects.create(
        title=title, status=status, root_node_id="root", genome_id="g", created_by=operator
    )
    for index, task_status in enumerate(tasks):
        Task.objects.create(directive=made, title=f"task {index}", packet={}, status=task_status)
    return made


def listed(html: str) -> list[str]:
    return re.findall(r'<tr data-directive-id="([^"]+)"', html)


@pytest.mark.django_db
def test_an_anonymous_visitor_gets_the_login_page() -> None:
    response = Client().get("/directives/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


@pytest.mark.django_db
def test_directives_are_listed_newest_first_with_their_tasks_done(
    operator: User, operator_client: Client
) -> None:
    older = directive("Add a health check", "completed", operator, tasks=("completed", "failed"))
    newer = directive("Fix the flaky test", "running", operator, tasks=("completed", "routed"))
    html = operator_client.get("/directives/").content.decode()
    assert listed(html) == [newer.id, older.id]
    row = re.search(rf'<tr data-directive-id="{newer.id}".*?</tr>', html, re.S)
    assert row and "1 / 2" in row.group(0) and "Fix the flaky test" in row.group(0)
    assert 'aria-current="page">Directives<' in html


@pytest.mark.django_db
def test_search_and_status_narrow_the_list(operator: User, operator_client: Client) -> None:
    health = directive("Add a health check", "completed", operator)
    flaky = directive("Fix the flaky test", "running", operator)
    assert listed(operator_client.get("/directives/?q=FLAKY").content.decode()) == [flaky.id]
    assert listed(operator_client.get(f"/directives/?q={health.id[:8]}").content.decode()) == [
        health.id
    ]
    by_status = operator_client.get("/directives/?status=completed").content.decode()
    assert listed(by_status) == [health.id]
    assert '<option value="completed" selected>' in by_status
    nothing = operator_client.get("/directives/?q=nothing-like-this").content.decode()
    assert listed(nothing) == [] and "No directive matches." in nothing


@pytest.mark.django_db
def test_the_list_pages_and_reads_bad_input_leniently(
    operator: User, operator_client: Client
) -> None:
    made = [directive(f"directive {index}", "completed", operator) for index in range(30)]
    first = operator_client.get("/directives/?status=completed").content.decode()
    assert len(listed(first)) == 25 and 'href="?page=2&amp;status=completed"' in first
    second = operator_client.get("/directives/?page=2&status=completed").content.decode()
    assert listed(second) == [d.id for d in reversed(made[:5])]
    for query in ("?page=0", "?page=x", "?status=exploded", "?page=99999999"):
        assert operator_client.get(f"/directives/{query}").status_code == 200, query
    assert len(listed(operator_client.get("/directives/?status=exploded").content.decode())) == 25
