"""The submit form of /directives/: through the directive service, errors beside their field."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from ledger import kinds
from ledger.models import LedgerEvent
from organization.services import genome_bootstrap
from tests import factories
from tests.support.verifiers import registered
from workers.models import Directive, Envelope

pytestmark = pytest.mark.django_db

URL = "/directives/new/"


@pytest.fixture
def organization() -> None:
    genome_bootstrap(template="nested", actor="operator:test")


@pytest.fixture
def operator() -> User:
    return factories.operator()


@pytest.fixture
def operator_client(operator: User, organization: None) -> Client:
    client = Client()
    client.force_login(operator)
    return client


@pytest.fixture(autouse=True)
def _nothing_reaches_a_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("workers.services.transport.envelope_send", lambda *args, **kwargs: None)


def nothing_stored() -> bool:
    return (
        not Directive.objects.exists()
        and not Envelope.objects.exists()
        and not LedgerEvent.objects.exclude(kind=kinds.GENOME_BOOTSTRAPPED).exists()
    )


def field_errors(html: str, field: str) -> list[str]:
    block = re.search(rf'<div class="field invalid" data-field="{field}">.*?</div>', html, re.S)
    if block is None:
        return []
    return re.findall(r"<li>(.*?)</li>", block.group(0))


def form(**fields: str) -> dict[str, str]:
    return {"title": "", "body": "", "risk": "Medium", "constraints": "", "metadata": "",
            "acceptance": "", "form_key": "", **fields}  # fmt: skip


def test_the_list_page_carries_the_form(operator_client: Client) -> None:
    html = operator_client.get("/directives/").content.decode()
    assert '<form id="directive-submit"' in html and 'action="/directives/new/"' in html
    assert 'name="csrfmiddlewaretoken"' in html and 'name="form_key" value="form:' in html


def test_a_viewer_sees_the_list_without_the_form(organization: None) -> None:
    viewer = Client()
    viewer.force_login(factories.viewer())

    html = viewer.get("/directives/").content.decode()

    assert "<h1>Directives</h1>" in html
    assert 'id="directive-submit"' not in html and "Submit a directive" not in html


def test_an_anonymous_visitor_cannot_submit(organization: None) -> None:
    response = Client().post(URL, form(title="Add a health check"))
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert nothing_stored()


def test_only_a_post_submits(operator_client: Client) -> None:
    assert operator_client.get(URL).status_code == 405


def test_a_valid_form_submits_through_the_service_and_opens_the_directive(
    operator: User, operator_client: Client
) -> None:
    response = operator_client.post(
        URL,
        form(
            title="Add a health-check endpoint",
            body="GET /health answers 200",
            risk="Low",
            constraints="no new dependencies\n\n keep it small ",
            metadata="requires_code_write=true\ntask_class = feature",
            acceptance=f"tests={registered('health-file', 'test -f health.py')}",
            form_key="form:one",
        ),
    )
    directive = Directive.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/directives/{directive.id}/"
    assert (directive.title, directive.risk, directive.origin) == (
        "Add a health-check endpoint",
        "Low",
        "dashboard",
    )
    assert directive.created_by == operator
    assert directive.constraints == ["no new dependencies", "keep it small"]
    assert directive.metadata == {"requires_code_write": "true", "task_class": "feature"}
    assert directive.acceptance == [
        {
            "name": "tests",
            "description": "",
            "verifier": "test -f health.py",
            "verifier_name": "health-file",
        }
    ]
    # As over the API: recorded in the ledger and sent to the root.
    assert LedgerEvent.objects.filter(kind=kinds.DIRECTIVE_ACCEPTED, directive_id=directive.id)
    assert Envelope.objects.get().target_node_id == "root-codebase-system"
    page = operator_client.get(response["Location"])
    assert page.status_code == 200 and "Add a health-check endpoint" in page.content.decode()


def test_the_same_form_sent_twice_makes_one_directive(operator_client: Client) -> None:
    sent = form(title="Add a health check", form_key="form:double-click")
    first, second = operator_client.post(URL, sent), operator_client.post(URL, sent)
    assert Directive.objects.count() == 1
    assert first["Location"] == second["Location"]


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"title": ""}, "title", "This field is required."),
        ({"title": "x" * 501}, "title", "at most 500 characters"),
        ({"metadata": "requires_code_write"}, "metadata", "Line 1 is not key=value"),
        ({"metadata": "requires_code_write=maybe"}, "metadata", "requires_code_write"),
        ({"metadata": "target_child=no-such-node"}, "metadata", "no-such-node"),
        ({"acceptance": "tests="}, "acceptance", "names no verifier"),
        ({"acceptance": "tests=make test"}, "acceptance", "No acceptance verifier is registered"),
        ({"acceptance": "tests=true\ntests=false"}, "acceptance", "must be unique"),
        ({"risk": "Enormous"}, "risk", "Select a valid choice"),
    ],
)
def test_bad_input_shows_its_error_beside_the_field_and_stores_nothing(
    operator_client: Client, fields: dict[str, str], field: str, message: str
) -> None:
    response = operator_client.post(URL, form(**{"title": "Add a health check", **fields}))
    assert response.status_code == 400
    html = response.content.decode()
    errors = field_errors(html, field)
    assert any(message in error for error in errors), (field, errors)
    # Screen readers hear the error with the field.
    assert re.search(rf'aria-invalid="true" aria-describedby="[^"]*id_{field}_error"', html)
    assert f'<ul class="errorlist field-errors" id="id_{field}_error"' in html
    assert nothing_stored()
    # The page comes back whole, the form open and filled in as it was sent.
    assert '<details class="submit" open>' in html
    if fields.get("metadata"):
        assert fields["metadata"] in html


def test_with_htmx_the_form_alone_comes_back(operator_client: Client) -> None:
    bad = operator_client.post(URL, form(title=""), headers={"HX-Request": "true"})
    assert bad.status_code == 400
    html = bad.content.decode()
    assert html.lstrip().startswith("{#") or html.lstrip().startswith("<form")
    assert "<html" not in html and field_errors(html, "title") == ["This field is required."]
    good = operator_client.post(
        URL, form(title="Add a health check"), headers={"HX-Request": "true"}
    )
    directive = Directive.objects.get()
    assert good.status_code == 200 and good["HX-Redirect"] == f"/directives/{directive.id}/"


def test_without_an_organization_the_form_says_so(operator: User) -> None:
    client = Client()
    client.force_login(operator)
    response = client.post(URL, form(title="Add a health check"))
    assert response.status_code == 400
    assert "there is no organization yet" in response.content.decode()
    assert not Directive.objects.exists()


def test_a_form_reused_for_another_directive_is_renewed(operator_client: Client) -> None:
    operator_client.post(URL, form(title="Add a health check", form_key="form:reused"))
    response = operator_client.post(URL, form(title="Something else", form_key="form:reused"))
    assert response.status_code == 400 and Directive.objects.count() == 1
    html = response.content.decode()
    assert "already submitted a different directive" in html
    key: Any = re.search(r'name="form_key" value="([^"]+)"', html)
    assert key and key.group(1) != "form:reused"
