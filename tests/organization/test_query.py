"""Lenient reads of a page's query string: a value a page cannot use is no choice, never a 500."""

from __future__ import annotations

import pytest
from django.http import QueryDict
from django.test import Client

from organization.query import query_int, query_page, query_text
from organization.services import genome_bootstrap
from tests import factories


def q(text: str) -> QueryDict:
    return QueryDict(text)


def test_a_number_is_read_when_it_is_decimal_digits_within_bounds() -> None:
    assert query_int(q("seq=42"), "seq") == 42
    assert query_int(q("seq=%2B42"), "seq") is None  # a sign is not a digit
    assert query_int(q("seq=%2042%20"), "seq") == 42  # spaces around it are dropped
    assert query_int(q("seq=0"), "seq") == 0
    assert query_int(q("seq=0"), "seq", least=1) is None
    assert query_int(q("seq=999999999999999999"), "seq") == 10**18 - 1
    assert query_int(q("seq=1000000000000000000"), "seq") is None
    assert query_int(q("seq=99"), "seq", below=99) is None


@pytest.mark.parametrize("value", ["", "x", "-1", "1.5", "%C2%B2", "9" * 5000, "1e3"])
def test_anything_else_is_no_number(value: str) -> None:
    assert query_int(q(f"seq={value}"), "seq") is None
    assert query_int(q(""), "seq") is None


def test_a_page_is_counted_from_one_and_is_the_first_when_off() -> None:
    assert query_page(q("page=3")) == 3
    assert query_page(q("")) == 1
    assert query_page(q("page=0")) == 1
    assert query_page(q("page=%C2%B2")) == 1
    assert query_page(q("page=100000"), below=100_000) == 1


def test_text_is_stripped_and_cut_to_its_bound() -> None:
    assert query_text(q("q=%20coder%20"), "q", max_length=100) == "coder"
    assert query_text(q("q=" + "a" * 300), "q", max_length=200) == "a" * 200
    assert query_text(q(""), "q", max_length=10) == ""


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path",
    ["/alarms/?page=", "/directives/?page=", "/ledger/?seq=", "/nodes/backend-system/?page=",
     "/genome/?page="],
)  # fmt: skip
@pytest.mark.parametrize("value", ["%C2%B2", "9" * 5000])
def test_the_pages_answer_a_number_they_cannot_use_with_their_first_page(
    path: str, value: str
) -> None:
    genome_bootstrap(template="nested", actor="operator:test")
    client = Client()
    client.force_login(factories.viewer())

    assert client.get(path + value).status_code == 200
