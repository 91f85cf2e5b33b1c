"""/directives/<id>/: a directive's task graph (SVG), its tasks, and one task in full."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from ledger.models import TaskTrace
from ledger.services import task_trace_record
from tests import factories
from workers.models import Directive, Task


@pytest.fixture
def operator() -> User:
    return factories.operator()


@pytest.fixture
def operator_client(operator: User) -> Client:
    client = Client()
    client.force_login(operator)
    return client


def a_directive(operator: User, *, status: str = "running") -> Directive:
    return Directive.objects.create(
        title="Add a health-check endpoint",
        status=status,
        root_node_id="root-codebase-system",
        genome_id="g",
        created_by=operator,
        acceptance=[{"name": "tests", "description": "", "verifier": "test -f health.py"}],
    )


def a_task(
    directive: Directive, key: str, status: str, *, after: tuple[str, ...] = (), **fields: object
) -> Task:
    task_id = f"{directive.id[:8]}-{key}"
    packet = {
        "id": task_id,
        "title": f"the {key} task",
        "goal": f"do the {key} part",
        "dependencies": [f"{directive.id[:8]}-{d}" for d in after],
        "acceptance": [{"name": "tests", "description": "", "verifier": "test -f health.py"}],
    }
    return Task.objects.create(
        id=task_id,
        directive=directive,
        title=f"the {key} task",
        packet=packet,
        dependencies=packet["dependencies"],
        status=status,
        **fields,
    )


def a_directive_with_completed_tasks(operator: User, count: int) -> Directive:
    """A directive whose tasks ``t0`` … ``t<count - 1>`` are all completed, none depending."""
    directive = a_directive(operator)
    for index in range(count):
        a_task(directive, f"t{index}", "completed")
    return directive


def a_planned_directive(operator: User) -> tuple[Directive, dict[str, Task]]:
    """implementation → (test, review): one done, one running, one waiting."""
    directive = a_directive(operator)
    tasks = {
        "implementation": a_task(
            directive,
            "implementation",
            "completed",
            assigned_node_id="backend-system",
            executed_by="backend-coder",
            result_summary="added /health",
            result={
                "task_id": "x",
                "produced_by": "backend-coder",
                "status": "Completed",
                "summary": "added /health",
                "artifacts": [
                    {
                        "kind": "acceptance_check",
                        "content": "health.py exists\n",
                        "metadata": {"name": "tests", "passed": "true"},
                    }
                ],
            },
        ),
    }
    tasks["test"] = a_task(
        directive, "test", "routed", after=("implementation",), assigned_node_id="qa-system"
    )
    tasks["review"] = a_task(directive, "review", "waiting", after=("implementation", "test"))
    return directive, tasks


def graph_nodes(html: str) -> dict[str, str]:
    """task id → status, as the SVG draws them."""
    return dict(
        re.findall(r'<g class="task-node[^"]*" data-task-id="([^"]+)" data-status="([^"]+)"', html)
    )


def graph_edges(html: str) -> set[tuple[str, str]]:
    return set(
        re.findall(r'<path class="edge[^"]*" d="[^"]+" data-from="([^"]+)" data-to="([^"]+)"', html)
    )


@pytest.mark.django_db
def test_an_anonymous_visitor_gets_the_login_page(operator: User) -> None:
    directive = a_directive(operator)
    for url in (f"/directives/{directive.id}/", f"/directives/{directive.id}/live/"):
        response = Client().get(url)
        assert response.status_code == 302 and response["Location"].startswith("/login/")


@pytest.mark.django_db
def test_the_graph_draws_every_task_coloured_by_status_with_its_dependencies_as_edges(
    operator: User, operator_client: Client
) -> None:
    directive, tasks = a_planned_directive(operator)
    response = operator_client.get(f"/directives/{directive.id}/")
    assert response.status_code == 200
    html = response.content.decode()
    implementation, test, review = tasks["implementation"], tasks["test"], tasks["review"]
    assert graph_nodes(html) == {
        implementation.id: "completed",
        test.id: "routed",
        review.id: "waiting",
    }
    assert graph_edges(html) == {
        (implementation.id, test.id),
        (implementation.id, review.id),
        (test.id, review.id),
    }
    # The node each task went to is drawn, and said in words.
    assert 'data-node="backend-coder"' in html and "completed · backend-coder" in html
    assert 'data-node="qa-system"' in html and "assigned to qa-system" in html
    assert "1 of 3 tasks finished" in html
    assert 'aria-current="page">Directives<' in html


@pytest.mark.django_db
def test_a_task_opens_with_its_packet_result_trace_and_verifier_output(
    operator: User, operator_client: Client
) -> None:
    directive, tasks = a_planned_directive(operator)
    implementation = tasks["implementation"]
    started = timezone.now() - timedelta(minutes=1)
    trace = task_trace_record(
        trace=TaskTrace(
            task_id=implementation.id,
            directive_id=directive.id,
            genome_id="g",
            assigned_node_id="backend-coder",
            responsible_ancestor_ids=["backend-system", "root-codebase-system"],
            started_at=started,
            completed_at=started,
            latency_ms=1234,
            tests_run=["tests"],
            tests_passed=True,
            outcome_score=1.0,
        )
    )
    html = operator_client.get(
        f"/directives/{directive.id}/?task={implementation.id}"
    ).content.decode()
    detail = re.search(r'<section id="task-detail".*?</section>', html, re.S)
    assert detail is not None
    shown = detail.group(0)
    assert f'data-task-id="{implementation.id}"' in shown
    assert "do the implementation part" in shown  # the packet's goal
    assert "added /health" in shown  # the result
    assert f'data-trace-id="{trace.id}"' in shown and "1234 ms" in shown
    assert 'data-check="tests"' in shown and "health.py exists" in shown
    assert "test -f health.py" in shown  # the verifier that ran
    assert f'class="task-node status-completed selected" data-task-id="{implementation.id}"' in html

    # A task that has not run yet says so, and names the checks still to come.
    waiting = operator_client.get(f"/directives/{directive.id}/?task={tasks['review'].id}")
    shown = waiting.content.decode()
    assert "Not run yet" in shown and "No trace yet" in shown


@pytest.mark.django_db
def test_without_a_choice_the_first_failed_task_is_open(
    operator: User, operator_client: Client
) -> None:
    directive = a_directive(operator, status="failed")
    a_task(directive, "first", "completed")
    failed = a_task(directive, "second", "failed", result_summary="acceptance check 'tests' failed")
    html = operator_client.get(
        f"/directives/{directive.id}/?task=not-one-of-its-tasks"
    ).content.decode()
    assert f'<h2 id="task-detail-heading" data-task-id="{failed.id}">' in html
    assert "acceptance check &#x27;tests&#x27; failed" in html


@pytest.mark.django_db
def test_the_live_fragment_is_the_same_live_part_alone(
    operator: User, operator_client: Client
) -> None:
    directive, tasks = a_planned_directive(operator)
    response = operator_client.get(
        f"/directives/{directive.id}/live/?task={tasks['test'].id}", headers={"HX-Request": "true"}
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert '<div id="directive-live"' in html and "<html" not in html
    assert len(graph_nodes(html)) == 3
    # Its live updates follow the task now open.
    assert (
        f'ws-connect="/ws/directives/?directive={directive.id}&amp;task={tasks["test"].id}"' in html
    )


@pytest.mark.django_db
def test_an_unknown_directive_is_a_404_that_says_so(operator_client: Client) -> None:
    for url in ("/directives/no-such-directive/", "/directives/no-such-directive/live/"):
        response = operator_client.get(url)
        assert response.status_code == 404
        assert "No such directive" in response.content.decode()
        assert "no-such-directive" in response.content.decode()


@pytest.mark.django_db
def test_a_directive_without_tasks_yet_says_so(operator: User, operator_client: Client) -> None:
    directive = a_directive(operator, status="accepted")
    html = operator_client.get(f"/directives/{directive.id}/").content.decode()
    assert "not mapped this directive" in html and "0 of 0 tasks finished" in html


@pytest.mark.django_db
def test_a_directive_too_big_to_draw_lists_its_tasks_instead(
    operator: User, operator_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("workers.views.task_graph.GRAPH_TASK_LIMIT", 3)
    directive = a_directive_with_completed_tasks(operator, 4)
    html = operator_client.get(f"/directives/{directive.id}/").content.decode()
    assert graph_nodes(html) == {}
    assert "4 tasks: more than the 3 the graph is drawn for" in html
    assert len(re.findall(r'<tr data-task-id="', html)) == 4
    assert "not listed" not in html


@pytest.mark.django_db
def test_a_directive_of_very_many_tasks_lists_those_not_completed(
    operator: User, operator_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("workers.views.directive_detail.TASK_LIST_LIMIT", 3)
    directive = a_directive_with_completed_tasks(operator, 4)
    failed = a_task(directive, "broken", "failed")
    running = a_task(directive, "running", "routed")
    html = operator_client.get(f"/directives/{directive.id}/").content.decode()
    assert re.findall(r'<tr data-task-id="([^"]+)"', html) == [failed.id, running.id]
    assert "4 tasks not listed" in html
    assert "4 of 6 tasks finished" not in html and "5 of 6 tasks finished" in html


@pytest.mark.django_db
def test_titles_and_ids_are_escaped_in_the_picture(operator: User, operator_client: Client) -> None:
    directive = a_directive(operator)
    Task.objects.create(
        id='x"><script>alert(1)</script>',
        directive=directive,
        title="<b>bold</b> & co",
        packet={},
        status="routed",
        assigned_node_id='<img src=x onerror="1">',
    )
    html = operator_client.get(f"/directives/{directive.id}/").content.decode()
    assert "<script>alert(1)" not in html and "<b>bold</b>" not in html and "<img src=x" not in html
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; co" in html
