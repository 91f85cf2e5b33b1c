"""/api/trials/: list and read trials with their evidence; approve and reject them."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests import factories
from tests.trials.operators import (
    BACKEND,
    EVALUATION,
    HYPOTHESIS,
    make_trial,
    organization,
    record_traces,
    trial_operator,
)
from trials.models import Trial, TrialApproval
from trials.selectors import evidence_hash, trial_evidence_bundle, trial_get

pytestmark = pytest.mark.django_db

LIST = "/api/trials/"


@pytest.fixture(autouse=True)
def _organization() -> None:
    organization()


def client_of(user: User | None) -> APIClient:
    api = APIClient()
    if user is not None:
        token, _ = Token.objects.get_or_create(user=user)
        api.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return api


@pytest.fixture
def operator() -> APIClient:
    return client_of(trial_operator())


@pytest.fixture
def viewer() -> APIClient:
    return client_of(factories.viewer())


def decide(
    api: APIClient, trial_id: str, verdict: str, body: dict[str, Any] | None = None, **headers: str
) -> Any:
    return api.post(f"{LIST}{trial_id}/{verdict}/", body or {}, format="json", headers=headers)


# -- reading ----------------------------------------------------------------------------------


def test_an_outsider_without_a_token_reads_nothing() -> None:
    make_trial()

    assert client_of(None).get(LIST).status_code == 401
    assert client_of(None).get(f"{LIST}{make_trial(state='queued').id}/").status_code == 401


def test_the_list_is_paginated_and_filters_by_state_mode_and_controller(viewer: APIClient) -> None:
    probation = make_trial()
    canary = make_trial(mode="canary", controller_node_id=BACKEND, requires_approval=False)
    queued = make_trial(state=Trial.State.QUEUED, queued_minutes_ago=1)

    def ids(query: str) -> list[str]:
        response = viewer.get(LIST + query)
        assert response.status_code == 200, response.content
        body = response.json()
        assert {"count", "next", "previous", "results"} <= set(body)
        return [item["id"] for item in body["results"]]

    assert ids("") == [queued.id, canary.id, probation.id]  # newest queued first
    assert ids("?state=active") == [canary.id, probation.id]
    assert ids("?mode=canary") == [canary.id]
    assert ids(f"?controller={BACKEND}") == [canary.id]
    assert ids("?state=queued&mode=probation") == [queued.id]
    assert ids("?page_size=1&page=2") == [canary.id]
    first = viewer.get(LIST).json()["results"][-1]
    assert first["hypothesis"] == HYPOTHESIS and first["awaiting_operator"] is True


def test_the_list_refuses_an_unknown_state_or_mode(viewer: APIClient) -> None:
    assert viewer.get(LIST + "?state=happy").status_code == 400
    assert "mode" in viewer.get(LIST + "?mode=yolo").json()


def test_the_detail_carries_the_evidence_bundle_and_its_hash(viewer: APIClient) -> None:
    trial = make_trial(evaluation=EVALUATION, verdict="inconclusive", reason="interval has 0")
    record_traces(trial, candidate=[1.0, -1.0], champion=[1.0])

    response = viewer.get(f"{LIST}{trial.id}/")

    assert response.status_code == 200, response.content
    body = response.json()
    evidence = body["evidence"]
    assert evidence["suggestion"]["hypothesis"] == HYPOTHESIS
    assert evidence["genome_diff"]["nodes_added"] == ["review-probation-leaf"]
    champion = EVALUATION["numbers"]["arms"]["champion"]
    assert evidence["decision"]["champion"]["interval"] == champion["wilson"]
    assert [p["n"] for p in evidence["series"]["candidate"]] == [1, 2]
    assert evidence["recommendation"]["verdict"] == "inconclusive"
    assert body["evidence_hash"] == evidence_hash(
        trial_evidence_bundle(trial=trial_get(trial_id=trial.id))
    )
    assert body["evidence_hash"] == viewer.get(f"{LIST}{trial.id}/").json()["evidence_hash"]
    assert body["approvals"] == []


def test_an_unknown_trial_is_a_404(viewer: APIClient, operator: APIClient) -> None:
    assert viewer.get(f"{LIST}ghost/").status_code == 404
    assert decide(operator, "ghost", "approve").status_code == 404
    assert decide(operator, "ghost", "reject", {"reason": "no"}).status_code == 404


# -- refused before anything is decided ---------------------------------------------------------


@pytest.mark.parametrize(
    ("verdict", "body", "field"),
    [
        ("reject", {}, "reason"),
        ("reject", {"reason": "   "}, "reason"),
        ("reject", {"reason": 5}, "reason"),
        ("approve", {"reason": ["why"]}, "reason"),
        ("approve", {"reasn": "typo"}, "reasn"),
        ("approve", {"evidence_hash": "md5:abc"}, "evidence_hash"),
        ("approve", {"evidence_hash": 12}, "evidence_hash"),
        ("reject", {"reason": "x" * 5001}, "reason"),
    ],
)
def test_bad_input_is_a_400_naming_the_field_and_changes_nothing(
    operator: APIClient, verdict: str, body: dict[str, Any], field: str
) -> None:
    trial = make_trial()

    response = decide(operator, trial.id, verdict, body)

    assert response.status_code == 400, response.content
    assert field in response.json()
    assert not TrialApproval.objects.exists()
    assert trial_get(trial_id=trial.id).awaiting_operator


def test_a_body_that_is_not_an_object_is_a_400(operator: APIClient) -> None:
    trial = make_trial()
    response = operator.post(f"{LIST}{trial.id}/approve/", [1, 2], format="json")
    assert response.status_code == 400


def test_an_overlong_idempotency_key_is_a_400(operator: APIClient) -> None:
    trial = make_trial()
    response = decide(operator, trial.id, "approve", {}, **{"Idempotency-Key": "k" * 201})
    assert response.status_code == 400
    assert not TrialApproval.objects.exists()


# -- decisions (through trials.services.lifecycle) ------------------------------------------------


def test_an_operator_approves_a_pending_probation_trial(operator: APIClient) -> None:
    trial = make_trial()
    shown = operator.get(f"{LIST}{trial.id}/").json()["evidence_hash"]

    response = decide(operator, trial.id, "approve", {"evidence_hash": shown})

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["verdict"] == "approve"
    assert body["evidence_hash"] == shown
    assert body["actor_name"] == "trial-operator"
    trial.refresh_from_db()
    assert trial.approved_at is not None
    assert trial.state == Trial.State.ACTIVE and not trial.awaiting_operator
    assert body["trial"]["approved_at"] is not None
    assert TrialApproval.objects.get().trial_id == trial.id


def test_an_operator_rejects_a_pending_trial_with_a_reason(operator: APIClient) -> None:
    trial = make_trial()

    response = decide(operator, trial.id, "reject", {"reason": "the reviewer costs too much"})

    assert response.status_code == 200, response.content
    trial.refresh_from_db()
    assert trial.state == Trial.State.REJECTED
    assert response.json()["trial"]["state"] == "rejected"
    assert TrialApproval.objects.get().reason == "the reviewer costs too much"


def test_a_retried_post_with_the_same_key_returns_the_first_approval(operator: APIClient) -> None:
    trial = make_trial()
    key = {"Idempotency-Key": "approve-once"}

    first = decide(operator, trial.id, "approve", {"reason": "looks safe"}, **key)
    again = decide(operator, trial.id, "approve", {"reason": "looks safe"}, **key)

    assert first.status_code == again.status_code == 200, (first.content, again.content)
    assert again.json()["id"] == first.json()["id"]
    assert TrialApproval.objects.count() == 1


def test_the_same_key_for_another_trial_or_body_is_a_409(operator: APIClient) -> None:
    trial = make_trial()
    other = make_trial(controller_node_id=BACKEND)
    key = {"Idempotency-Key": "reused"}
    assert decide(operator, trial.id, "approve", {"reason": "ok"}, **key).status_code == 200

    elsewhere = decide(operator, other.id, "approve", {"reason": "ok"}, **key)
    changed = decide(operator, trial.id, "approve", {"reason": "different"}, **key)

    assert elsewhere.status_code == 409, elsewhere.content
    assert changed.status_code == 409, changed.content
    assert TrialApproval.objects.count() == 1
    assert trial_get(trial_id=other.id).awaiting_operator


def test_a_viewer_without_the_permission_gets_a_403(viewer: APIClient) -> None:
    trial = make_trial()

    assert decide(viewer, trial.id, "approve").status_code == 403
    assert decide(viewer, trial.id, "reject", {"reason": "no"}).status_code == 403
    assert not TrialApproval.objects.exists()
    assert trial_get(trial_id=trial.id).awaiting_operator


@pytest.mark.parametrize(
    "state", [Trial.State.PROMOTED, Trial.State.REJECTED, Trial.State.QUEUED, Trial.State.PRUNED]
)
def test_a_trial_no_longer_pending_is_a_409(operator: APIClient, state: str) -> None:
    trial = make_trial(state=state)

    assert decide(operator, trial.id, "approve").status_code == 409
    assert decide(operator, trial.id, "reject", {"reason": "late"}).status_code == 409
    assert not TrialApproval.objects.exists()


def test_an_approved_trial_cannot_be_approved_twice(operator: APIClient) -> None:
    trial = make_trial()
    assert decide(operator, trial.id, "approve").status_code == 200

    assert decide(operator, trial.id, "approve").status_code == 409


def test_overruling_an_inconclusive_trial_needs_a_reason_and_promotes_it(
    operator: APIClient,
) -> None:
    trial = make_trial(state=Trial.State.INCONCLUSIVE, verdict="inconclusive")

    bare = decide(operator, trial.id, "approve")
    reasoned = decide(operator, trial.id, "approve", {"reason": "the gain is worth the risk"})

    assert bare.status_code == 400 and "reason" in bare.json()
    assert reasoned.status_code == 200, reasoned.content
    assert reasoned.json()["overrides_rule"] is True
    assert trial_get(trial_id=trial.id).state == Trial.State.PROMOTED
