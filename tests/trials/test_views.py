"""/trials/: the operator's inbox and each trial's page, with Approve and Reject, live.

In-process tests of the pages and their websocket; tests/browser/test_trials_inbox.py is a
person in Chromium against daphne.
"""

from __future__ import annotations

import re
import time

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client

from ledger import kinds
from ledger.services import ledger_append
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
from vsmsite.asgi import application


@pytest.fixture
def tree(db: None) -> None:
    organization()


def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def operator(tree: None) -> Client:
    return logged_in(trial_operator())


@pytest.fixture
def viewer(tree: None) -> Client:
    return logged_in(factories.viewer())


def row_ids(html: str) -> list[str]:
    return re.findall(r'<tr data-trial-id="([^"]+)"', html)


def section(html: str, name: str) -> str:
    start = html.index(f'<section id="trials-{name}"')
    return html[start : html.index("</section>", start)]


# -- the inbox --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_it_sends_an_anonymous_visitor_to_the_login_form(tree: None) -> None:
    response = Client().get("/trials/")

    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/trials/"


@pytest.mark.django_db
def test_the_inbox_lists_pending_trials_first_then_running_then_recent(operator: Client) -> None:
    ended = make_trial(state=Trial.State.PRUNED, queued_minutes_ago=200)
    running = make_trial(requires_approval=False, queued_minutes_ago=100)
    queued = make_trial(state=Trial.State.QUEUED, queued_minutes_ago=1)
    waiting = make_trial(controller_node_id=BACKEND, queued_minutes_ago=50)

    html = operator.get("/trials/").content.decode()

    assert row_ids(html) == [waiting.id, running.id, queued.id, ended.id]
    assert row_ids(section(html, "pending")) == [waiting.id]
    assert row_ids(section(html, "active")) == [running.id]
    assert HYPOTHESIS[:60] in html
    assert f'href="/trials/{waiting.id}/"' in html
    assert 'ws-connect="/ws/trials/"' in html
    assert "/static/vendor/htmx/ext/ws.min.js" in html and "cdn" not in html.lower()


@pytest.mark.django_db
def test_an_operator_gets_a_decision_form_that_works_without_javascript(operator: Client) -> None:
    trial = make_trial()

    html = section(operator.get("/trials/").content.decode(), "pending")

    assert f'action="/trials/{trial.id}/approve/"' in html
    assert f'formaction="/trials/{trial.id}/reject/"' in html
    assert f'hx-post="/trials/{trial.id}/approve/"' in html
    assert 'name="csrfmiddlewaretoken"' in html
    assert 'name="reason"' in html
    shown = evidence_hash(trial_evidence_bundle(trial=trial_get(trial_id=trial.id)))
    assert f'name="evidence_hash" value="{shown}"' in html


@pytest.mark.django_db
def test_a_viewer_sees_the_pending_trial_but_no_buttons(viewer: Client) -> None:
    trial = make_trial()

    inbox = viewer.get("/trials/").content.decode()
    detail = viewer.get(f"/trials/{trial.id}/").content.decode()

    assert trial.id in section(inbox, "pending")
    for html in (inbox, detail):
        assert "/approve/" not in html and "/reject/" not in html
        assert "trials.approve_trial" in html  # says why


@pytest.mark.django_db
def test_a_viewer_posting_a_decision_gets_a_403_and_nothing_changes(viewer: Client) -> None:
    trial = make_trial()

    approve = viewer.post(f"/trials/{trial.id}/approve/", {"view": "inbox"})
    reject = viewer.post(f"/trials/{trial.id}/reject/", {"reason": "no"}, HTTP_HX_REQUEST="true")

    assert approve.status_code == reject.status_code == 403
    assert not TrialApproval.objects.exists()
    assert trial_get(trial_id=trial.id).awaiting_operator


@pytest.mark.django_db
def test_rejecting_without_a_reason_says_so_in_place(operator: Client) -> None:
    trial = make_trial()

    response = operator.post(
        f"/trials/{trial.id}/reject/", {"view": "inbox", "reason": " "}, HTTP_HX_REQUEST="true"
    )

    assert response.status_code == 400
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="trial-flash"')  # the inbox's body, to swap in
    row = section(body, "pending")
    assert '<ul class="errors" role="alert"><li>say why the trial is rejected</li>' in row
    assert not TrialApproval.objects.exists()
    assert trial_get(trial_id=trial.id).awaiting_operator


@pytest.mark.django_db
def test_a_refused_decision_without_htmx_shows_the_trial_page_with_the_error(
    operator: Client,
) -> None:
    trial = make_trial(state=Trial.State.INCONCLUSIVE, verdict="inconclusive")

    response = operator.post(f"/trials/{trial.id}/approve/", {"reason": ""})

    assert response.status_code == 400
    html = response.content.decode()
    assert "<html" in html and "overrides the rule: say why" in html
    assert trial_get(trial_id=trial.id).state == Trial.State.INCONCLUSIVE


@pytest.mark.django_db
def test_decisions_refuse_get_strangers_and_forged_requests(operator: Client, tree: None) -> None:
    trial = make_trial()

    assert operator.get(f"/trials/{trial.id}/approve/").status_code == 405
    assert operator.post("/trials/ghost/approve/").status_code == 404
    anonymous = Client().post(f"/trials/{trial.id}/approve/")
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/login/")
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(trial_operator())
    assert strict.post(f"/trials/{trial.id}/approve/").status_code == 403
    assert not TrialApproval.objects.exists()


@pytest.mark.django_db
def test_approving_from_the_inbox_with_htmx_moves_the_trial_to_running(operator: Client) -> None:
    trial = make_trial()

    response = operator.post(
        f"/trials/{trial.id}/approve/", {"view": "inbox", "reason": ""}, HTTP_HX_REQUEST="true"
    )

    assert response.status_code == 200, response.content
    body = response.content.decode()
    assert f"Trial {trial.id[:8]} approved." in body
    assert trial.id not in section(body, "pending")
    assert row_ids(section(body, "active")) == [trial.id]
    assert trial_get(trial_id=trial.id).approved_at is not None


@pytest.mark.django_db
def test_rejecting_without_htmx_comes_back_to_the_trial_page(operator: Client) -> None:
    trial = make_trial()

    response = operator.post(f"/trials/{trial.id}/reject/", {"reason": "too costly"})

    assert response.status_code == 302
    assert response["Location"] == f"/trials/{trial.id}/"
    assert trial_get(trial_id=trial.id).state == Trial.State.REJECTED
    page = operator.get(response["Location"]).content.decode()
    assert "too costly" in page  # the decision, listed
    assert "/reject/" not in page  # no longer pending: no buttons


# -- a trial's page ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_trial_page_shows_the_whole_bundle(operator: Client) -> None:
    trial = make_trial(evaluation=EVALUATION, verdict="inconclusive", reason="interval has 0")
    record_traces(trial, candidate=[1.0, -1.0], champion=[1.0])

    html = operator.get(f"/trials/{trial.id}/").content.decode()

    assert HYPOTHESIS in html
    assert '<code class="node-added">review-probation-leaf</code>' in html
    low, high = EVALUATION["numbers"]["arms"]["champion"]["wilson"]
    assert f"[{low:.3f}, {high:.3f}]" in html
    assert '<svg class="arm-chart"' in html and 'data-arm="champion" data-n="1"' in html
    assert "interval has 0" in html
    assert f'ws-connect="/ws/trials/?trial={trial.id}"' in html
    assert operator.get("/trials/ghost/").status_code == 404


# -- the websocket ----------------------------------------------------------------------------


def trials_socket(client: Client | None, path: str = "/ws/trials/") -> WebsocketCommunicator:
    headers = [(b"origin", b"http://localhost")]
    if client is not None:
        cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
        headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()))
    return WebsocketCommunicator(application, path, headers=headers)


async def receive_until(socket: WebsocketCommunicator, wanted: str, timeout: float = 5) -> str:
    deadline = time.monotonic() + timeout
    while True:
        frame = str(await socket.receive_from(timeout=max(deadline - time.monotonic(), 0.01)))
        if wanted in frame:
            return frame


@pytest.mark.django_db(transaction=True)
def test_the_socket_refuses_anonymous_visitors_and_unknown_trials(tree: None) -> None:
    client = logged_in(trial_operator())

    async def close_code(socket: WebsocketCommunicator) -> int:
        assert (await socket.connect())[0]
        return int((await socket.receive_output(timeout=5))["code"])

    assert async_to_sync(close_code)(trials_socket(None)) == 4401
    assert async_to_sync(close_code)(trials_socket(client, "/ws/trials/?trial=ghost")) == 4404


def _queue_another_trial() -> str:
    trial = make_trial(state=Trial.State.QUEUED)
    ledger_append(
        kind=kinds.TRIAL_QUEUED,
        actor="system:trials",
        node_id=trial.controller_node_id,
        trial_id=trial.id,
        payload={"suggestion_id": trial.id},
    )
    return trial.id


@pytest.mark.django_db(transaction=True)
def test_the_socket_refreshes_on_connect_then_pushes_trial_events(tree: None) -> None:
    client = logged_in(trial_operator())
    waiting = make_trial()

    async def scenario() -> tuple[str, str, str]:
        socket = trials_socket(client)
        assert (await socket.connect())[0]
        first = await socket.receive_from(timeout=5)
        queued_id = await database_sync_to_async(_queue_another_trial)()
        pushed = await receive_until(socket, f'data-trial-id="{queued_id}"')
        await socket.disconnect()
        return first, pushed, queued_id

    first, pushed, queued_id = async_to_sync(scenario)()

    for name in ("pending", "active", "recent"):
        opening = f'<section id="trials-{name}" aria-labelledby="trials-{name}-heading"'
        assert f'{opening} hx-swap-oob="true"' in first
    assert waiting.id in section(first, "pending")
    assert f'hx-post="/trials/{waiting.id}/approve/"' in first
    assert queued_id in section(pushed, "recent")
    assert "csrfmiddlewaretoken" not in pushed  # htmx sends the token from <body hx-headers>


@pytest.mark.django_db(transaction=True)
def test_a_trial_page_socket_sends_that_trial_and_follows_its_decision(tree: None) -> None:
    client = logged_in(trial_operator())
    trial = make_trial()

    def reject() -> None:
        from trials.services.approvals import trial_reject

        trial_reject(trial_id=trial.id, user=trial_operator(), reason="not now")

    async def scenario() -> tuple[str, str]:
        socket = trials_socket(client, f"/ws/trials/?trial={trial.id}")
        assert (await socket.connect())[0]
        first = await socket.receive_from(timeout=5)
        await database_sync_to_async(reject)()
        pushed = await receive_until(socket, 'data-state="rejected"')
        await socket.disconnect()
        return first, pushed

    first, pushed = async_to_sync(scenario)()

    assert first.startswith('<div id="trial-detail" hx-swap-oob="true"')
    assert f'hx-post="/trials/{trial.id}/approve/"' in first
    assert "/approve/" not in pushed and "not now" in pushed


@pytest.mark.django_db(transaction=True)
def test_a_viewers_sockets_push_the_trials_without_the_decision_buttons(viewer: Client) -> None:
    waiting = make_trial()

    async def scenario() -> tuple[str, str, str]:
        inbox = trials_socket(viewer)
        assert (await inbox.connect())[0]
        first = str(await inbox.receive_from(timeout=5))
        queued_id = await database_sync_to_async(_queue_another_trial)()
        pushed = await receive_until(inbox, f'data-trial-id="{queued_id}"')
        await inbox.disconnect()
        page = trials_socket(viewer, f"/ws/trials/?trial={waiting.id}")
        assert (await page.connect())[0]
        detail = str(await page.receive_from(timeout=5))
        await page.disconnect()
        return first, pushed, detail

    first, pushed, detail = async_to_sync(scenario)()

    assert waiting.id in section(first, "pending")
    assert detail.startswith('<div id="trial-detail" hx-swap-oob="true"')
    for frame in (first, pushed, detail):
        assert "/approve/" not in frame and "/reject/" not in frame


@pytest.mark.django_db(transaction=True)
def test_a_failing_render_closes_the_trials_socket_with_try_again_later(
    viewer: Client, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: object, **kwargs: object) -> str:
        raise RuntimeError("the database went away")

    async def scenario() -> int:
        inbox = trials_socket(viewer)
        assert (await inbox.connect())[0]
        await inbox.receive_from(timeout=5)
        monkeypatch.setattr("trials.consumers.inbox_sections_html", broken)
        await database_sync_to_async(_queue_another_trial)()
        code = int((await inbox.receive_output(timeout=5))["code"])
        # As a server does once the close handshake is over: the consumer leaves the reader.
        await inbox.disconnect()
        return code

    assert async_to_sync(scenario)() == 1013
    assert "TrialsConsumer stopped following the ledger" in caplog.text
