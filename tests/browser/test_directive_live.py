"""A directive submitted from /directives/ in Chromium, its task graph turning green live: a
person against daphne, with a real worker running the tasks (the in-process tests are
tests/workers/test_directive_page.py, test_directive_submit_form.py and
test_directive_socket.py)."""

from __future__ import annotations

from typing import Any

import pytest

from organization.services import genome_apply_patch, genome_bootstrap
from tests import factories
from tests.browser.conftest import Server, needs_chromium
from tests.support.processes import celery_worker, purge_queues
from workers.models import Directive

# A reviewing leaf beside the coder, so that a decomposed directive's review task has a home.
REVIEWER = {
    "kind": "add_child",
    "parent_id": "root-codebase-system",
    "child": {
        "id": "reviewer",
        "name": "reviewer",
        "leaf_operation": {
            "kind": "Reviewing",
            "allows_test_execution": True,
            "allows_review": True,
            "allows_research": True,
            "allows_filesystem_read": True,
        },
        "model": {"provider": "echo", "model": "local-echo"},
    },
}


@needs_chromium
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_submit_a_directive_from_the_form_and_watch_its_task_graph_turn_green_live(
    daphne_server: Server, browser_page: Any
) -> None:
    from playwright.sync_api import expect

    genome_bootstrap(template="single", actor="operator:test")
    genome_apply_patch(patch=REVIEWER, actor="operator:test")
    operator = factories.operator()
    purge_queues("controllers", "leaves")
    page, url = browser_page, daphne_server.url

    page.goto(f"{url}/directives/")
    assert "/login/?next=" in page.url and "/admin/" not in page.url
    page.fill("#id_username", operator.username)
    page.fill("#id_password", factories.PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{url}/directives/")

    # A mistake first: the error shows beside its field, and nothing is submitted.
    page.locator("details.submit summary").click()
    page.fill("#id_title", "Add rate limiting")
    page.fill("#id_metadata", "decompose")
    page.click("#directive-submit button[type=submit]")
    expect(page.locator('[data-field="metadata"] .field-errors')).to_contain_text(
        "Line 1 is not key=value"
    )
    assert not Directive.objects.exists()

    # Corrected, it is submitted through the service and the browser opens its page. No worker
    # runs yet: the directive waits in the broker, so the page is seen before any task exists.
    page.fill("#id_metadata", "decompose=true\nrequires_tests=true")
    page.select_option("#id_risk", "High")
    page.click("#directive-submit button[type=submit]")
    page.wait_for_url(f"{url}/directives/*/")
    directive = Directive.objects.get()
    assert page.url == f"{url}/directives/{directive.id}/"
    expect(page.locator("h1")).to_contain_text("Add rate limiting")
    expect(page.locator("#stream-state")).to_have_attribute("data-stream", "live")
    expect(page.locator("#directive-graph")).to_contain_text("not mapped this directive")
    page.evaluate("window.loadedOnce = true")

    with celery_worker(
        "directive-page", queues="controllers,leaves", env={"DJANGO_ALLOW_ASYNC_UNSAFE": ""}
    ) as worker:
        # The tasks appear in the graph and turn green, one after the other, without a reload.
        nodes = page.locator("#directive-graph g.task-node")
        expect(nodes).to_have_count(3, timeout=30_000)
        expect(page.locator('#directive-graph g.task-node[data-status="completed"]')).to_have_count(
            3, timeout=30_000
        )
        expect(page.locator("#directive-graph path.edge")).to_have_count(2)
        expect(
            page.locator('#directive-progress [data-directive-status="completed"]')
        ).to_be_visible()
        expect(page.locator("#directive-progress")).to_contain_text("3 of 3 tasks finished")
        assert page.evaluate("window.loadedOnce") is True, "turned green without a reload"
        assert "Traceback" not in worker.output, worker.output

    # Open the review task from the graph: it opens in place, and says who ran it.
    review = page.locator('#directive-graph g.task-node[data-node="reviewer"]')
    review.locator("a").click()
    detail = page.locator("#task-detail")
    expect(detail).to_contain_text("executed by")
    expect(detail.locator('a[href="/nodes/reviewer/"]').first).to_be_visible()
    expect(detail).to_contain_text("Trace")
    assert "?task=" in page.url and page.evaluate("window.loadedOnce") is True
    expect(page.locator("#stream-state")).to_have_attribute("data-stream", "live")
    assert "Traceback" not in daphne_server.output, daphne_server.output
