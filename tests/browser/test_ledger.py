"""The ledger explorer in Chromium: filter the events, then verify the chain with a real worker
and watch the progress bar reach the result (the in-process tests: test_ledger_pages.py)."""

from __future__ import annotations

from typing import Any

import pytest

from ledger import kinds
from ledger.services import ledger_append
from organization.services import genome_bootstrap
from tests import factories
from tests.browser.conftest import Server, needs_chromium
from tests.support.processes import celery_worker, purge_queues


@needs_chromium
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_filter_the_ledger_and_verify_the_chain(daphne_server: Server, browser_page: Any) -> None:
    from playwright.sync_api import expect

    genome_bootstrap(template="nested", actor="test")
    for number in range(3):
        ledger_append(kind=kinds.AUDIT_STARTED, node_id="backend-system", payload={"n": number})
    operator = factories.operator()
    purge_queues("celery")
    page, url = browser_page, daphne_server.url

    page.goto(f"{url}/ledger/")
    page.fill("#id_username", operator.username)
    page.fill("#id_password", factories.PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{url}/ledger/")

    page.select_option("#ledger-kind", "audit_started")
    page.locator("#ledger-filters button[type=submit]").click()
    rows = page.locator("#ledger-events tbody tr")
    expect(rows).to_have_count(3)
    for row in rows.all():
        assert row.get_attribute("data-kind") == "audit_started"

    with celery_worker("ledger-check", queues="celery", env={"DJANGO_ALLOW_ASYNC_UNSAFE": ""}):
        page.locator("#verify-chain").click()
        page.wait_for_url(f"{url}/ledger/checks/*/")
        # The page polls itself (htmx) until the worker has walked the chain.
        expect(page.locator("#ledger-check")).to_have_attribute("data-state", "ok", timeout=60_000)
        expect(page.locator("#ledger-check-result")).to_contain_text("ok ")
        expect(page.locator("#ledger-check-progress")).to_have_attribute("value", "100")
