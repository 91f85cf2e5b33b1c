"""/alarms/ in Chromium: a person against daphne, with a real controller worker and a
signal posted from another process (the in-process tests are tests/workers/test_alarms_page.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

import pytest
from rest_framework.authtoken.models import Token

from organization.services import genome_bootstrap
from tests import factories
from tests.browser.conftest import Server, needs_chromium, subprocess_env
from tests.support.processes import BASE_DIR, celery_worker, purge_queues

# -- a person in Chromium -----------------------------------------------------------------

POST_SIGNAL = """
import json, sys, time, urllib.request
url, token, message = sys.argv[1:4]
body = json.dumps({"severity": 9, "message": message, "target_node_id": "backend-coder"})
request = urllib.request.Request(
    url + "/api/signals/", data=body.encode(), method="POST",
    headers={"Content-Type": "application/json", "Authorization": "Token " + token},
)
sent = time.time()
with urllib.request.urlopen(request, timeout=10) as response:
    print(json.dumps({"sent": sent, "status": response.status, "body": json.load(response)}))
"""


def post_signal_from_another_process(server: Server, token: str, message: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", POST_SIGNAL, server.url, token, message],
        cwd=BASE_DIR,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    answer: dict[str, Any] = json.loads(done.stdout)
    assert answer["status"] == 201, answer
    return answer


@needs_chromium
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_pain_signal_appears_live_and_pause_pauses_the_subtree(
    daphne_server: Server, browser_page: Any
) -> None:
    from playwright.sync_api import expect

    genome_bootstrap(template="nested", actor="operator:test")
    operator = factories.admin()
    token = Token.objects.create(user=operator).key
    purge_queues("controllers", "leaves")
    page = browser_page

    # The worker must not inherit this process's async-safety exemption.
    no_exemption = {"DJANGO_ALLOW_ASYNC_UNSAFE": ""}
    with celery_worker("alarms", queues="controllers,leaves", env=no_exemption) as worker:
        # Log in through the admin's form, as a person would.
        page.goto(f"{daphne_server.url}/alarms/")
        assert "/login/?next=" in page.url and "/admin/" not in page.url
        page.fill("#id_username", operator.username)
        page.fill("#id_password", factories.PASSWORD)
        page.click("input[type=submit]")
        page.wait_for_url(f"{daphne_server.url}/alarms/")
        expect(page.locator("#stream-state")).to_have_attribute("data-stream", "live")
        page.evaluate("window.loadedOnce = true")

        # A pain signal from another process shows up within two seconds, no reload.
        message = f"production is on fire {time.monotonic_ns()}"
        answer = post_signal_from_another_process(daphne_server, token, message)
        row = page.locator(f'tr[data-signal-id="{answer["body"]["id"]}"]')
        row.wait_for(state="visible", timeout=5_000)
        latency = time.time() - answer["sent"]
        assert latency < 2.0, f"the signal took {latency:.2f}s to appear"
        expect(row).to_contain_text(message)
        assert page.evaluate("window.loadedOnce") is True

        # Pause: the controller worker applies it; the page and the API both say so.
        node_row = page.locator('tr[data-node-id="backend-system"]')
        node_row.locator("button.pause").click()
        expect(page.locator("#alarm-flash")).to_contain_text("Pause of backend-system requested")
        expect(node_row).to_have_attribute("data-paused", "true", timeout=20_000)
        expect(node_row.locator(".node-state")).to_have_text("paused")
        expect(page.locator('tr[data-node-id="backend-coder"] .node-state')).to_have_text(
            "paused with backend-system"
        )
        expect(
            page.locator('#alarm-pauses tr[data-paused-node-id="backend-system"]')
        ).to_be_visible()
        api = page.request.get(f"{daphne_server.url}/api/nodes/backend-system/")
        assert api.status == 200
        assert api.json()["paused"] is True, api.json()
        assert page.evaluate("window.loadedOnce") is True

        # Resume undoes it the same way.
        node_row.locator("button.resume").click()
        expect(node_row).to_have_attribute("data-paused", "false", timeout=20_000)
        assert (
            page.request.get(f"{daphne_server.url}/api/nodes/backend-system/").json()["paused"]
            is False
        )
        assert "Traceback" not in worker.output, worker.output
    assert "Traceback" not in daphne_server.output, daphne_server.output
