"""The trials admin: lists and pages to read, approve and reject only with the permission, and
only through the services."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from tests import factories
from tests.trials.operators import (
    BACKEND,
    CANDIDATE_NUMBERS,
    DIFFERENCE,
    EVALUATION,
    HYPOTHESIS,
    make_trial,
    organization,
    record_traces,
    trial_operator,
)
from trials.models import GeneSuggestion, Trial, TrialApproval
from trials.selectors import evidence_hash, trial_evidence_bundle, trial_get

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:trials_trial_changelist")


@pytest.fixture(autouse=True)
def _organization() -> None:
    organization()


def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def operator() -> Client:
    return logged_in(trial_operator())


@pytest.fixture
def viewer() -> Client:
    return logged_in(factories.staff_viewer())


@pytest.fixture
def service_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Records calls that reach the services, for the tests that expect none."""
    calls: list[dict[str, Any]] = []
    for name in ("trial_approve", "trial_reject"):
        monkeypatch.setattr(f"trials.views.{name}", lambda **kwargs: calls.append(kwargs))
    return calls


def change_url(trial: Trial) -> str:
    return reverse("admin:trials_trial_change", args=[trial.pk])


def decide_url(trial: Trial, verdict: str) -> str:
    return reverse("admin:trials_trial_decide", args=[trial.pk, verdict])


def offered_actions(client: Client) -> list[str]:
    form = client.get(CHANGELIST).context["action_form"]  # None when there are none
    return [] if form is None else [name for name, _ in form.fields["action"].choices]


def test_the_list_filters_by_state_and_mode(viewer: Client) -> None:
    probation = make_trial()
    canary = make_trial(mode="canary", controller_node_id=BACKEND, requires_approval=False)
    queued = make_trial(state=Trial.State.QUEUED)

    def listed(query: dict[str, str]) -> set[str]:
        page = viewer.get(CHANGELIST, query)
        assert page.status_code == 200
        return {trial.pk for trial in page.context["cl"].result_list}

    assert listed({}) == {probation.pk, canary.pk, queued.pk}
    assert listed({"state__exact": "active"}) == {probation.pk, canary.pk}
    assert listed({"mode__exact": "canary"}) == {canary.pk}
    assert listed({"q": "review"}) == {probation.pk, canary.pk, queued.pk}  # the hypothesis
    assert listed({"q": BACKEND}) == {canary.pk}


def test_a_viewer_is_not_offered_the_actions_and_posting_them_changes_nothing(
    viewer: Client, service_calls: list[dict[str, Any]]
) -> None:
    trial = make_trial()

    actions = offered_actions(viewer)
    posted = viewer.post(
        CHANGELIST,
        {"action": "approve_trials", ACTION_CHECKBOX_NAME: [trial.pk], "confirm": "yes"},
    )

    assert "approve_trials" not in actions and "reject_trials" not in actions
    assert posted.status_code in (200, 302)
    assert service_calls == []
    assert trial_get(trial_id=trial.id).awaiting_operator


def test_an_operator_is_asked_for_a_reason_before_a_bulk_action_runs(
    operator: Client, service_calls: list[dict[str, Any]]
) -> None:
    trial = make_trial()
    actions = offered_actions(operator)

    asked = operator.post(CHANGELIST, {"action": "reject_trials", ACTION_CHECKBOX_NAME: [trial.pk]})
    blank = operator.post(
        CHANGELIST,
        {"action": "reject_trials", ACTION_CHECKBOX_NAME: [trial.pk], "confirm": "yes"},
    )

    assert {"approve_trials", "reject_trials"} <= set(actions)
    assert asked.status_code == 200
    html = asked.content.decode()
    assert 'name="reason"' in html and 'name="confirm"' in html
    shown = evidence_hash(trial_evidence_bundle(trial=trial_get(trial_id=trial.id)))
    assert f'name="evidence_hash:{trial.pk}" value="{shown}"' in html
    assert blank.status_code == 400
    assert "A rejection needs a reason." in blank.content.decode()
    assert service_calls == []


def test_the_bulk_reject_action_rejects_through_the_service(operator: Client) -> None:
    first = make_trial()
    second = make_trial(controller_node_id=BACKEND)

    response = operator.post(
        CHANGELIST,
        {
            "action": "reject_trials",
            ACTION_CHECKBOX_NAME: [first.pk, second.pk],
            "confirm": "yes",
            "reason": "the reviewer leaf is not worth its tokens",
        },
        follow=True,
    )

    assert response.status_code == 200
    assert {t.state for t in Trial.objects.all()} == {Trial.State.REJECTED}
    assert TrialApproval.objects.filter(verdict="reject").count() == 2
    assert "rejected" in response.content.decode()


def test_the_trial_page_shows_the_bundle_and_a_chart_of_both_arms(operator: Client) -> None:
    trial = make_trial(evaluation=EVALUATION, verdict="inconclusive", reason="interval has 0")
    record_traces(trial, candidate=[1.0, 1.0, -1.0], champion=[1.0, -1.0])

    page = operator.get(change_url(trial))

    assert page.status_code == 200
    html = page.content.decode()
    assert HYPOTHESIS in html
    assert "3 failed/reverted traces across 8 observed traces" in html
    assert '<code class="node-added">review-probation-leaf</code>' in html
    low, high = CANDIDATE_NUMBERS["wilson"]
    assert f"{CANDIDATE_NUMBERS['rate']:.3f}" in html  # the candidate's rate
    assert f"[{low:.3f}, {high:.3f}]" in html  # and its Wilson interval
    assert f"[{DIFFERENCE['lower']:.3f}, {DIFFERENCE['upper']:.3f}]" in html  # the gain's
    assert 'class="guardrail-failed"><td>latency' in html
    assert '<svg class="arm-chart"' in html
    assert 'data-arm="candidate" data-n="3"' in html
    assert 'data-arm="champion" data-n="2"' in html
    assert "interval has 0" in html  # the recommendation
    assert evidence_hash(trial_evidence_bundle(trial=trial_get(trial_id=trial.id))) in html
    # The chart is drawn by the page itself: no script, style or image comes from elsewhere
    # (a bare "cdn" substring would also match inside the random CSRF token).
    assert re.findall(r'(?:src|href)\s*=\s*["\']?(?:[a-z][a-z0-9+.-]*:)?//', html, re.I) == []
    assert decide_url(trial, "approve") in html and decide_url(trial, "reject") in html


def test_a_viewer_sees_the_bundle_but_no_buttons_and_cannot_open_the_form(viewer: Client) -> None:
    trial = make_trial()

    page = viewer.get(change_url(trial)).content.decode()

    assert HYPOTHESIS in page
    assert decide_url(trial, "approve") not in page
    assert viewer.get(decide_url(trial, "approve")).status_code == 403
    assert viewer.post(decide_url(trial, "reject"), {"reason": "no"}).status_code == 403
    assert trial_get(trial_id=trial.id).awaiting_operator


def test_the_reject_form_needs_a_reason(operator: Client, service_calls: list[Any]) -> None:
    trial = make_trial()

    form = operator.get(decide_url(trial, "reject"))
    refused = operator.post(decide_url(trial, "reject"), {"reason": "  "})

    assert form.status_code == 200 and 'name="reason"' in form.content.decode()
    assert refused.status_code == 400
    assert "A rejection needs a reason." in refused.content.decode()
    assert service_calls == []


def test_the_approve_button_approves_through_the_service(operator: Client) -> None:
    trial = make_trial()
    shown = evidence_hash(trial_evidence_bundle(trial=trial_get(trial_id=trial.id)))

    response = operator.post(decide_url(trial, "approve"), {"evidence_hash": shown})

    assert response.status_code == 302, response.content
    assert response["Location"] == change_url(trial)
    trial.refresh_from_db()
    assert trial.approved_at is not None
    approval = TrialApproval.objects.get()
    assert (approval.verdict, approval.evidence_hash) == ("approve", shown)


def test_a_decision_the_service_refuses_is_shown_on_the_form(operator: Client) -> None:
    trial = make_trial(state=Trial.State.PROMOTED)

    response = operator.post(decide_url(trial, "reject"), {"reason": "too late"})

    assert response.status_code == 400
    assert 'class="errorlist"' in response.content.decode()
    assert not TrialApproval.objects.exists()


def test_suggestions_and_approvals_are_read_only(operator: Client) -> None:
    trial = make_trial()
    suggestion = GeneSuggestion.objects.get()

    page = operator.get(reverse("admin:trials_genesuggestion_change", args=[suggestion.pk]))
    assert page.status_code == 200
    assert HYPOTHESIS in page.content.decode() and "Save" not in page.content.decode()
    assert operator.get(reverse("admin:trials_genesuggestion_add")).status_code == 403
    assert operator.get(reverse("admin:trials_trialapproval_add")).status_code == 403
    assert operator.get(reverse("admin:trials_auditrun_add")).status_code == 403
    assert operator.get(reverse("admin:trials_trialapproval_changelist")).status_code == 200
    assert operator.get(reverse("admin:trials_auditrun_changelist")).status_code == 200
    assert "Save" not in operator.get(change_url(trial)).content.decode()
