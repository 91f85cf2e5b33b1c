"""The overview and a node's page in Chromium: a person against daphne, with a real controller
worker applying the pause (the in-process tests are tests/vsmsite/test_dashboard.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from ledger.models import TaskTrace
from ledger.services import task_trace_record
from organization.genome import fan_out_organization
from organization.selectors import champion_version_id
from organization.services import genome_bootstrap_from
from tests import factories
from tests.browser.conftest import Server, needs_chromium
from tests.support.processes import celery_worker, purge_queues


def traces_in_subtree_of_n1(count: int) -> list[TaskTrace]:
    """Traces of leaf n-15 (under n-1, under the root), newest last."""
    version = champion_version_id() or ""
    stored = []
    for minutes_ago in range(count, 0, -1):
        started = timezone.now() - timedelta(minutes=minutes_ago)
        stored.append(
            task_trace_record(
                trace=TaskTrace(
                    task_id=f"browser-task-{minutes_ago}",
                    genome_id=version,
                    assigned_node_id="n-15",
                    responsible_ancestor_ids=["n-1", "root-codebase-system"],
                    started_at=started,
                    completed_at=started,
                    latency_ms=30,
                    outcome_score=1.0 if minutes_ago % 2 else -1.0,
                )
            )
        )
    return stored


@needs_chromium
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_click_a_node_see_its_traces_pause_it_and_see_the_tree_mark_it(
    daphne_server: Server, browser_page: Any
) -> None:
    from playwright.sync_api import expect

    # 150 nodes: n-11 … n-14 sit at the third level with children of their own (collapsed).
    genome_bootstrap_from(genome=fan_out_organization(150), actor="test", label="fan-out-150")
    traces = traces_in_subtree_of_n1(3)
    operator = factories.admin()
    purge_queues("controllers", "leaves")
    page = browser_page
    url = daphne_server.url

    with celery_worker(
        "dashboard", queues="controllers,leaves", env={"DJANGO_ALLOW_ASYNC_UNSAFE": ""}
    ) as worker:
        # Anonymous: the login page first, then the overview.
        page.goto(f"{url}/")
        assert "/login/?next=" in page.url and "/admin/" not in page.url
        page.fill("#id_username", operator.username)
        page.fill("#id_password", factories.PASSWORD)
        page.click("input[type=submit]")
        page.wait_for_url(f"{url}/")
        expect(page.locator('g[data-node-id="root-codebase-system"]')).to_be_visible()
        expect(page.locator('g[data-node-id="n-111"]')).to_have_count(0)

        # Open a collapsed subtree in place: the tree is swapped, the page is not reloaded.
        page.evaluate("window.loadedOnce = true")
        page.locator('g[data-node-id="n-11"] a.toggle').click()
        expect(page.locator('g[data-node-id="n-111"]')).to_be_visible()
        assert page.url == f"{url}/?expand=n-11"
        assert page.evaluate("window.loadedOnce") is True

        # Click a node in the tree: its page, with its subtree's traces.
        page.locator('g[data-node-id="n-1"] a.node-link').click()
        page.wait_for_url(f"{url}/nodes/n-1/")
        expect(page.locator("h1")).to_have_text("n-1")
        # Its fitness over time, drawn by the vendored chart library from the page's series.
        expect(page.locator("#fitness-chart")).to_have_attribute("data-drawn", "true")
        expect(page.locator("#fitness-chart canvas")).to_have_count(1)
        rows = page.locator("#node-traces tbody tr")
        expect(rows).to_have_count(3)
        assert rows.first.get_attribute("data-trace-id") == traces[-1].id, "newest first"
        page.select_option("#trace-outcome", "failed")
        page.locator("#node-traces button[type=submit]").click()
        expect(rows).to_have_count(1)
        expect(rows.first.locator(".outcome")).to_have_text("failed")

        # The overview open in another tab, following the ledger.
        overview = page.context.new_page()
        overview.goto(f"{url}/")
        expect(overview.locator("#overview-live")).to_have_attribute("data-stream", "live")
        overview.evaluate("window.loadedOnce = true")

        # The node's page open in a third tab, following its subtree's events.
        watcher = page.context.new_page()
        watcher.goto(f"{url}/nodes/n-1/")
        expect(watcher.locator("#node-events-live")).to_have_attribute("data-stream", "live")
        watcher.evaluate("window.loadedOnce = true")

        # Pause it from its page; the controller worker applies it; the open overview's tree
        # redraws itself from the stream and marks the subtree, without a reload.
        page.locator("button.pause").click()
        expect(page.locator(".flash.success")).to_contain_text("Pause of n-1 requested")
        node = overview.locator('g[data-node-id="n-1"]')
        expect(node).to_have_attribute("data-paused", "true", timeout=20_000)
        assert overview.evaluate("window.loadedOnce") is True, "marked without a reload"
        # The watching node page got the pause signal at n-1 as it landed, without a reload.
        raised = watcher.locator("#node-event-list tbody tr", has_text="algedonic_signal_raised")
        expect(raised.first).to_be_visible(timeout=10_000)
        assert watcher.evaluate("window.loadedOnce") is True, "listed without a reload"
        page = overview
        assert "pause-target" in (node.get_attribute("class") or "")
        expect(page.locator('g[data-node-id="n-15"]')).to_have_attribute("data-paused", "true")
        expect(page.locator('g[data-node-id="n-2"]')).to_have_attribute("data-paused", "false")
        # The side panel follows too: its alarms count the pause, still without a reload.
        expect(page.locator('[data-count="paused"]')).to_have_text("1")
        assert overview.evaluate("window.loadedOnce") is True, "counted without a reload"
        assert "Traceback" not in worker.output, worker.output
    assert "Traceback" not in daphne_server.output, daphne_server.output
