"""The text and metadata rules every way in shares (API, parser, command line, services)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from workers.domain.input_rules import (
    MAX_METADATA_KEY_LENGTH,
    MAX_METADATA_KEYS,
    metadata_errors,
    text_errors,
    text_problem,
)


@given(st.text())
def test_text_is_refused_exactly_when_utf8_or_a_postgres_column_could_not_hold_it(
    text: str,
) -> None:
    storable = "\x00" not in text and all(not 0xD800 <= ord(c) <= 0xDFFF for c in text)

    assert (text_problem(text) is None) == storable


@given(
    st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=5),
    st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF),
)
def test_a_lone_surrogate_is_named_by_its_code_point(prefix: str, surrogate: str) -> None:
    problem = text_problem(surrogate + prefix)

    assert problem is not None and f"U+{ord(surrogate):04X}" in problem


def test_length_counts_characters_not_bytes() -> None:
    assert text_errors("é" * 10, max_length=10) == []
    assert text_errors("é" * 11, max_length=10) == ["At most 10 characters (this has 11)."]


def test_metadata_at_the_limits_passes_and_one_past_them_does_not() -> None:
    full = {f"{n:0{MAX_METADATA_KEY_LENGTH}d}": "v" for n in range(MAX_METADATA_KEYS)}

    assert metadata_errors(full) == []
    assert metadata_errors({**full, "one more": "v"}) == [
        f"At most {MAX_METADATA_KEYS} keys (this has {MAX_METADATA_KEYS + 1})."
    ]
    (long_key,) = metadata_errors({"k" * (MAX_METADATA_KEY_LENGTH + 1): "v"})
    assert f"is {MAX_METADATA_KEY_LENGTH + 1} characters long" in long_key
    assert len(long_key) < 120  # the key is shown cut short


def test_values_that_are_not_text_are_left_to_the_edge() -> None:
    assert metadata_errors({"requires_code_write": True, "count": 3}) == []
