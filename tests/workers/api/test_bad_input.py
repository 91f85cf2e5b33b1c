"""Bad input to the runtime's API gets a 400 that says what to fix, never a 500, and changes
nothing: the same on SQLite and PostgreSQL (a column PostgreSQL bounds, SQLite would store)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from organization.services import genome_bootstrap
from tests import factories
from tests.support.snapshots import nothing_changes
from workers.domain.input_rules import (
    MAX_METADATA_KEY_LENGTH,
    MAX_METADATA_KEYS,
    MAX_METADATA_VALUE_LENGTH,
)
from workers.models import AlgedonicSignalRecord, Directive

pytestmark = pytest.mark.django_db

DIRECTIVES = "/api/directives/"
SIGNALS = "/api/signals/"
ENVIRONMENT = "/api/environment-signals/"


@pytest.fixture
def api() -> APIClient:
    genome_bootstrap(template="nested", actor="operator:test")
    client = APIClient()
    client.force_authenticate(factories.admin())
    return client


@pytest.fixture
def unchanged(api: APIClient) -> Iterator[None]:
    with nothing_changes():
        yield


def post_raw(api: APIClient, url: str, text: str) -> Any:
    """JSON text as sent on the wire: ``\\ud800`` stays an escape a client may send."""
    return api.post(url, data=text.encode(), content_type="application/json")


def refusal(response: Any, where: str) -> str:
    """The 400's JSON, which names where the fault is: the field, or its path in the body."""
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/json"
    text = json.dumps(response.json(), ensure_ascii=False)
    assert where in text, text
    return text


@pytest.mark.parametrize(
    ("metadata_json", "message"),
    [
        ('{"a\\u0000b": "x"}', "NUL"),
        ('{"\\ud800": "x"}', "surrogate"),
        ('{"key": "\\udfff"}', "surrogate"),
        ('{"key": "a\\u0000"}', "NUL"),
        ('{"": "x"}', "empty"),
        (json.dumps({"k" * (MAX_METADATA_KEY_LENGTH + 1): "x"}), f"{MAX_METADATA_KEY_LENGTH}"),
        (json.dumps({"k" * 2_000_000: "x"}), f"{MAX_METADATA_KEY_LENGTH}"),
        (json.dumps({"k": "v" * (MAX_METADATA_VALUE_LENGTH + 1)}), f"{MAX_METADATA_VALUE_LENGTH}"),
        (json.dumps({f"k{n}": "x" for n in range(MAX_METADATA_KEYS + 1)}), "At most 100 keys"),
    ],
    ids=["nul-key", "surrogate-key", "surrogate-value", "nul-value", "empty-key", "long-key",
         "2MB-key", "long-value", "too-many-keys"],
)  # fmt: skip
def test_bad_metadata_is_refused_wherever_metadata_is_taken(
    api: APIClient, unchanged: None, metadata_json: str, message: str
) -> None:
    directive = post_raw(api, DIRECTIVES, f'{{"title": "x", "metadata": {metadata_json}}}')
    planned = post_raw(
        api,
        DIRECTIVES,
        f'{{"title": "x", "tasks": [{{"key": "a", "title": "A", "metadata": {metadata_json}}}]}}',
    )
    environment = post_raw(
        api,
        ENVIRONMENT,
        '{"kind": "Risk", "source_environment": "ci", "summary": "red", '
        f'"metadata": {metadata_json}}}',
    )

    assert message in refusal(directive, "metadata")
    assert message in refusal(planned, "tasks")
    assert message in refusal(environment, "metadata")


def test_metadata_at_the_limits_is_accepted(api: APIClient) -> None:
    metadata = {f"k{n}": "x" for n in range(MAX_METADATA_KEYS - 1)}
    metadata["k" * MAX_METADATA_KEY_LENGTH] = "v" * MAX_METADATA_VALUE_LENGTH

    response = api.post(DIRECTIVES, {"title": "x", "metadata": metadata}, format="json")

    assert response.status_code == 201, response.content
    assert Directive.objects.get().metadata == metadata


@pytest.mark.parametrize("field", ["related_task_id", "related_suggestion_id", "target_node_id"])
@pytest.mark.parametrize("length", [201, 1_000_000])
def test_a_signal_id_longer_than_its_column_is_refused(
    api: APIClient, unchanged: None, field: str, length: int
) -> None:
    body = {"severity": 3, "message": "too long", field: "t" * length}

    response = api.post(SIGNALS, body, format="json")

    assert "200 characters" in refusal(response, field)


def test_a_signal_id_that_fits_its_column_is_stored(api: APIClient) -> None:
    body = {"severity": 3, "message": "fits", "related_task_id": "t" * 200}

    response = api.post(SIGNALS, body, format="json")

    assert response.status_code == 201, response.content
    assert AlgedonicSignalRecord.objects.get().related_task_id == "t" * 200


def chain(length: int, *, closed: bool) -> list[dict[str, Any]]:
    """t0 ← t1 ← … ← t(n-1): each task depends on the one before it; closed, t0 on the last."""
    tasks = [
        {"key": f"t{n}", "title": f"T{n}", "depends_on": [f"t{n - 1}"] if n else []}
        for n in range(length)
    ]
    if closed:
        tasks[0]["depends_on"] = [f"t{length - 1}"]
    return tasks


@pytest.mark.slow  # 2,000 tasks through the serializers: a few seconds
def test_a_plan_of_two_thousand_tasks_in_a_cycle_is_refused_naming_the_cycle(
    api: APIClient, unchanged: None
) -> None:
    plan = {"title": "x", "tasks": chain(2000, closed=True)}

    response = api.post(DIRECTIVES, plan, format="json")

    message = refusal(response, "tasks")
    assert "cycle" in message
    assert "t0 → t1999 → t1998" in message
    assert "2000 tasks" in message


@pytest.mark.slow
def test_a_plan_of_two_thousand_tasks_in_a_chain_is_accepted(api: APIClient) -> None:
    response = api.post(
        DIRECTIVES, {"title": "x", "tasks": chain(2000, closed=False)}, format="json"
    )

    assert response.status_code == 201, response.content
    assert len(Directive.objects.get().planned_tasks) == 2000


# The command line goes through the same rules as the API (the directive service's).
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        # argv is decoded with surrogateescape: bytes that are not UTF-8 arrive as lone
        # surrogates, which no database column can store.
        (["bad \udcff title"], "surrogate"),
        (["t" * 501], "500 characters"),
        (["ok", "--metadata", "k" * (MAX_METADATA_KEY_LENGTH + 1) + "=v"], "metadata"),
        (["ok", "--metadata", "key=\udcff"], "surrogate"),
        (["ok", "--body", "nul \x00 here"], "NUL"),
    ],
    ids=["surrogate-title", "long-title", "long-key", "surrogate-value", "nul-body"],
)
def test_the_command_line_refuses_what_the_api_refuses(
    api: APIClient, unchanged: None, argv: list[str], message: str
) -> None:
    with pytest.raises(CommandError, match="directive refused") as refused:
        call_command("directive_submit", *argv)

    assert message in str(refused.value)


def write_serializers() -> list[tuple[type[Any], type[Any]]]:
    from trials.api import ApproveSerializer, RejectSerializer
    from trials.models import TrialApproval
    from workers.api import DirectiveCreateSerializer, PlannedTaskSerializer
    from workers.grants_api import GrantCreateSerializer
    from workers.models import ResourceEpoch, Task
    from workers.signals_api import SignalCreateSerializer

    return [
        (DirectiveCreateSerializer, Directive),
        (PlannedTaskSerializer, Task),
        (SignalCreateSerializer, AlgedonicSignalRecord),
        (GrantCreateSerializer, ResourceEpoch),
        (ApproveSerializer, TrialApproval),
        (RejectSerializer, TrialApproval),
    ]


@pytest.mark.parametrize(("serializer", "model"), write_serializers())
def test_no_api_field_takes_more_characters_than_its_column_holds(
    serializer: type[Any], model: type[Any]
) -> None:
    """SQLite stores a string of any length in a varchar; PostgreSQL refuses it with a 500.
    Every text field the API writes to a column of the same name is bounded by that column."""
    columns = {field.name: field for field in model._meta.get_fields()}
    checked = []
    for name, field in serializer().fields.items():
        column = columns.get(name)
        bound = getattr(column, "max_length", None)
        if bound is None or not hasattr(field, "max_length"):
            continue
        assert field.max_length is not None and field.max_length <= bound, (name, bound)
        checked.append(name)
    assert checked
