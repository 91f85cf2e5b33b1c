"""Who may do what, at every URL and websocket the site serves (docs/operations.md, "Roles").

The URLs come from the URLconf itself: a URL with no rule below fails the test, so a new
endpoint cannot ship without someone deciding who may use it. Every URL is asked with every
method by every persona. Allowed requests use ids that do not exist or bodies that are not
valid, so that the answer (a 404, a 400) shows the permission check passed while nothing
changes; a refused one is a 403 that names the permission, or the login page for a visitor.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from ledger.models import LedgerEvent
from organization import roles
from organization.services import genome_bootstrap
from tests import factories
from vsmsite.asgi import application
from vsmsite.routing import websocket_urlpatterns
from workers.models import AcceptanceVerifier, AlgedonicSignalRecord, Directive

PUBLIC = "anyone"
STAFF = "the admin site's staff"
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
PERSONAS = ("anonymous", "outsider", "viewer", "operator", "approver", "admin")

# What each URL serves, and what each method needs: a permission, PUBLIC, or STAFF.
RULES: dict[str, dict[str, str]] = {
    "home": {"GET": roles.VIEW},
    "dashboard:tree": {"GET": roles.VIEW},
    "dashboard:panel": {"GET": roles.VIEW},
    "dashboard:genome": {"GET": roles.VIEW},
    "dashboard:genome-diff": {"GET": roles.VIEW},
    "dashboard:ledger": {"GET": roles.VIEW},
    "dashboard:ledger-check-start": {"POST": roles.VERIFY_LEDGER},
    "dashboard:ledger-check": {"GET": roles.VIEW},
    "dashboard:node": {"GET": roles.VIEW},
    "dashboard:node-pause": {"POST": roles.RAISE_SIGNAL},
    "dashboard:node-resume": {"POST": roles.RAISE_SIGNAL},
    "workers:alarms": {"GET": roles.VIEW},
    "workers:directives": {"GET": roles.VIEW},
    "workers:directive": {"GET": roles.VIEW},
    "workers:directive-live": {"GET": roles.VIEW},
    "workers:directive-submit": {"POST": roles.SUBMIT_DIRECTIVE},
    "workers:node-pause": {"POST": roles.RAISE_SIGNAL},
    "workers:node-resume": {"POST": roles.RAISE_SIGNAL},
    "trials:inbox": {"GET": roles.VIEW},
    "trials:detail": {"GET": roles.VIEW},
    # The page lets viewers reach the form; the decision itself needs approve_trial (below).
    "trials:approve": {"POST": roles.VIEW},
    "trials:reject": {"POST": roles.VIEW},
    "directive-list": {"GET": roles.VIEW, "POST": roles.SUBMIT_DIRECTIVE},
    "directive-detail": {"GET": roles.VIEW},
    "signal-list": {"GET": roles.VIEW, "POST": roles.RAISE_SIGNAL},
    "environment-signal-create": {"POST": roles.RAISE_SIGNAL},
    "grant-create": {"POST": roles.GRANT_BUDGET},
    "node-list": {"GET": roles.VIEW},
    "node-detail": {"GET": roles.VIEW},
    "node-fitness": {"GET": roles.VIEW},
    "trial-list": {"GET": roles.VIEW},
    "trial-detail": {"GET": roles.VIEW},
    "trial-approve": {"POST": roles.APPROVE_TRIAL},
    "trial-reject": {"POST": roles.APPROVE_TRIAL},
    "genome-rollback": {"POST": roles.ROLLBACK_GENOME},
    # The API's description is public, like any published API's.
    "schema": {"GET": PUBLIC},
    "api-docs": {"GET": PUBLIC},
    # Django's LoginView takes a PUT like a POST.
    "login": {"GET": PUBLIC, "POST": PUBLIC, "PUT": PUBLIC},
    "logout": {"POST": PUBLIC},
    # The Django admin checks its own model permissions past its door; the door is staff.
    "admin": {"GET": STAFF},
}
WEBSOCKET_RULES = {
    "ws/events/": roles.VIEW,
    "ws/alarms/": roles.VIEW,
    "ws/trials/": roles.VIEW,
    "ws/directives/": roles.VIEW,
}
SAMPLE_KWARGS = {
    "pk": "ghost",
    "node_id": "ghost",
    "trial_id": "ghost",
    "run_id": "ghost",
    "directive_id": "ghost",
}
# Query strings that pass validation where a view asks for one, to reach its 404.
# The whole history from seq 0: the stream sends at once, as the other two routes do.
WEBSOCKET_QUERIES = {
    "ws/events/": "node=root-codebase-system&since=0",
    "ws/directives/": "directive=matrix-directive",
}


def url_routes() -> Iterator[tuple[str, str]]:
    """(rule name, route) for every URL the URLconf serves; the whole admin is one."""

    def walk(patterns: list[Any], prefix: str, namespace: str) -> Iterator[tuple[str, str]]:
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                if pattern.app_name == "admin":
                    yield "admin", route
                    continue
                yield from walk(pattern.url_patterns, route, pattern.namespace or namespace)
            elif isinstance(pattern, URLPattern):
                assert pattern.name, f"{route} has no name: name it and give it a rule here"
                yield (f"{namespace}:{pattern.name}" if namespace else pattern.name), route

    yield from walk(get_resolver().url_patterns, "", "")


ROUTES = sorted(set(url_routes()))


def test_every_url_in_the_urlconf_has_a_rule_and_every_rule_a_url() -> None:
    names = {name for name, _ in ROUTES}

    assert sorted(names - set(RULES)) == [], "URLs without a rule: decide who may use them"
    assert sorted(set(RULES) - names) == [], "rules for URLs that no longer exist"


def test_every_websocket_route_has_a_rule() -> None:
    served = {str(pattern.pattern) for pattern in websocket_urlpatterns}

    assert served == set(WEBSOCKET_RULES)


def url_of(name: str) -> str:
    if name == "admin":
        return reverse("admin:index")
    route = dict(ROUTES)[name]
    kwargs = {key: SAMPLE_KWARGS[key] for key in re.findall(r"<(?:\w+:)?(\w+)>", route)}
    return reverse(name, kwargs=kwargs)


def may(persona: str, need: str) -> bool:
    if need == PUBLIC:
        return True
    if persona == "anonymous":
        return False
    if need == STAFF:
        return persona in ("approver", "admin")
    if persona == "admin":
        return True
    return persona in roles.ROLES and need in roles.ROLES[persona].permissions


def client_of(persona: str) -> Client:
    client = Client()
    if persona != "anonymous":
        user = factories.admin() if persona == "admin" else None
        if user is None:
            user = (
                factories.outsider()
                if persona == "outsider"
                else factories.with_roles(persona, persona)
            )
        client.force_login(user)
    return client


def ask(client: Client, method: str, url: str) -> Any:
    return client.generic(method, url, data=b"{}", content_type="application/json")


def nothing_changed() -> bool:
    return not (
        Directive.objects.exists()
        or AlgedonicSignalRecord.objects.exists()
        or AcceptanceVerifier.objects.exists()
        or LedgerEvent.objects.exclude(kind="genome_bootstrapped").exists()
    )


@pytest.mark.django_db
@pytest.mark.parametrize("name", sorted(RULES))
def test_each_persona_gets_what_its_roles_allow(name: str) -> None:
    genome_bootstrap(template="nested", actor="operator:test")
    url, rule = url_of(name), RULES[name]
    for persona in PERSONAS:
        check_persona(name, url, rule, persona)
        if name not in ("login", "logout"):
            assert nothing_changed(), f"{persona} changed something at {url}"


def check_persona(name: str, url: str, rule: dict[str, str], persona: str) -> None:
    client, is_api = client_of(persona), url.startswith("/api/")
    for method in METHODS:
        response = ask(client, method, url)
        status, where = response.status_code, f"{persona} {method} {url}"
        assert status < 500, f"{where}: {status}"
        if method not in rule and not (method == "GET" and name == "admin"):
            # Not served: 405, except that the API asks a visitor to log in first.
            public = set(rule.values()) == {PUBLIC}
            expected = 401 if is_api and persona == "anonymous" and not public else 405
            if name == "admin":
                continue  # the admin's own pages answer their own methods
            assert status == expected, f"{where}: {status}, expected {expected}"
            continue
        need = rule.get(method, STAFF)
        if may(persona, need):
            assert status not in (401, 403), f"{where}: refused ({status})"
            if status == 302 and need != PUBLIC:
                assert "login" not in response["Location"], f"{where}: sent to log in"
        elif persona == "anonymous" or need == STAFF:
            if is_api:
                assert status == 401, f"{where}: {status}, expected 401"
            else:
                assert status == 302 and "login/" in response["Location"], where
        else:
            assert status == 403, f"{where}: {status}, expected 403"
            assert need in response.content.decode(), f"{where}: the 403 does not name {need}"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("route", sorted(WEBSOCKET_RULES))
def test_each_websocket_admits_only_the_personas_with_its_permission(
    route: str, persona: str
) -> None:
    genome_bootstrap(template="nested", actor="operator:test")
    Directive.objects.create(
        id="matrix-directive", title="Watched", root_node_id="root-codebase-system"
    )
    headers = [(b"origin", b"http://localhost")]
    if persona != "anonymous":
        name = settings.SESSION_COOKIE_NAME
        headers.append((b"cookie", f"{name}={client_of(persona).cookies[name].value}".encode()))
    path = f"/{route}?{WEBSOCKET_QUERIES.get(route, '')}"

    async def first_message() -> dict[str, Any]:
        """The first thing the server sends: a frame when admitted, else the close."""
        socket = WebsocketCommunicator(application, path, headers=headers)
        connected, _ = await socket.connect()
        assert connected  # accepted first, so that a browser can read why it was closed
        message = dict(await socket.receive_output(timeout=5))
        if message["type"] != "websocket.close":
            await socket.disconnect()
        return message

    message = async_to_sync(first_message)()
    need = WEBSOCKET_RULES[route]
    if may(persona, need):
        assert message["type"] == "websocket.send", f"{persona} was refused {route}: {message}"
        return
    if persona == "anonymous":
        assert (message["type"], message["code"]) == ("websocket.close", 4401)
    else:
        assert (message["type"], message["code"]) == ("websocket.close", 4403)
        assert need in message["reason"]
