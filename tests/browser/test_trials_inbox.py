"""/trials/ in Chromium: an operator approves a pending trial from the inbox, against daphne
(the in-process tests are tests/trials/test_views.py)."""

from __future__ import annotations

from typing import Any

import pytest

from tests import factories
from tests.browser.conftest import Server, needs_chromium
from tests.trials.operators import make_trial, organization, trial_operator
from trials.models import Trial, TrialApproval


@needs_chromium
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_an_operator_approves_a_pending_trial_and_sees_it_running_without_a_reload(
    daphne_server: Server, browser_page: Any
) -> None:
    from playwright.sync_api import expect

    organization()
    trial = make_trial()
    operator = trial_operator()
    page = browser_page

    # Log in through the admin's form, as a person would.
    page.goto(f"{daphne_server.url}/trials/")
    assert "/login/?next=" in page.url and "/admin/" not in page.url
    page.fill("#id_username", operator.username)
    page.fill("#id_password", factories.PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{daphne_server.url}/trials/")
    expect(page.locator("#stream-state")).to_have_attribute("data-stream", "live")
    page.evaluate("window.loadedOnce = true")

    pending_row = page.locator(f'#trials-pending tr[data-trial-id="{trial.id}"]')
    expect(pending_row).to_have_attribute("data-awaiting", "true")
    pending_row.locator("textarea[name=reason]").fill("the reviewer's hypothesis is worth a try")
    pending_row.locator("button.approve").click()

    expect(page.locator("#trial-flash")).to_contain_text(f"Trial {trial.id[:8]} approved.")
    running_row = page.locator(f'#trials-active tr[data-trial-id="{trial.id}"]')
    expect(running_row).to_have_attribute("data-awaiting", "false")
    expect(running_row.locator(".trial-state")).to_contain_text("approved")
    expect(page.locator(f'#trials-pending tr[data-trial-id="{trial.id}"]')).to_have_count(0)
    assert page.evaluate("window.loadedOnce") is True  # no reload

    trial.refresh_from_db()
    assert trial.state == Trial.State.ACTIVE and trial.approved_at is not None
    approval = TrialApproval.objects.get()
    assert (approval.actor_name, approval.reason) == (
        operator.username,
        "the reviewer's hypothesis is worth a try",
    )
    assert "Traceback" not in daphne_server.output, daphne_server.output
