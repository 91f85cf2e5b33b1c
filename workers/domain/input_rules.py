"""Text and metadata a request may carry: pure rules, no Django, one place for every way in.

The API's serializers (``workers.api.MetadataField``), the JSON parser every API request goes
through (``vsmsite.api_input``), the command line and the directive service
(``workers.domain.directive_rules``) all ask these functions, so a value refused on one way
in is refused on every other, and on SQLite exactly as on PostgreSQL: PostgreSQL refuses a
NUL in text and a string longer than its ``varchar``, SQLite stores both; neither can store a
lone surrogate. Limits are documented in docs/operations.md ("Limits on input").
"""

from __future__ import annotations

from collections.abc import Mapping

# Metadata is routing and shape hints (docs/rules/routing.md), string → string.
MAX_METADATA_KEYS = 100
MAX_METADATA_KEY_LENGTH = 200
MAX_METADATA_VALUE_LENGTH = 2000
# Text stored in JSON or unbounded columns, which no column would otherwise bound.
MAX_BODY_LENGTH = 100_000  # a directive's body and desired state
MAX_GOAL_LENGTH = 20_000  # a planned task's goal
MAX_ITEM_LENGTH = 2000  # a constraint, an acceptance check's description or verifier
MAX_NAME_LENGTH = 200  # an acceptance check's name
MAX_PLANNED_TASKS = 5000


def text_problem(text: str) -> str | None:
    """Why no database column can hold ``text`` as given, or None when it can."""
    if "\x00" in text:
        return "contains a NUL character (\\u0000); remove it"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        code = ord(text[error.start])
        return f"contains a lone surrogate (U+{code:04X}), which is not text; send valid UTF-8"
    return None


def text_errors(text: str, *, max_length: int | None) -> list[str]:
    """What is wrong with one text field: unstorable characters, or more than ``max_length``."""
    problem = text_problem(text)
    if problem is not None:
        return [f"Text {problem}."]
    if max_length is not None and len(text) > max_length:
        return [f"At most {max_length} characters (this has {len(text)})."]
    return []


def metadata_errors(metadata: Mapping[str, object]) -> list[str]:
    """Metadata's own limits: how many keys, how long each key and each text value, and
    text a column can store. Values that are not text are the edge's to convert first."""
    if len(metadata) > MAX_METADATA_KEYS:
        return [f"At most {MAX_METADATA_KEYS} keys (this has {len(metadata)})."]
    errors = []
    for key, value in metadata.items():
        shown = _shown(key)
        if not key:
            errors.append("Keys must not be empty.")
        elif problem := text_problem(key):
            errors.append(f"The key {shown} {problem}.")
        elif len(key) > MAX_METADATA_KEY_LENGTH:
            errors.append(
                f"The key {shown} is {len(key)} characters long: at most {MAX_METADATA_KEY_LENGTH}."
            )
        elif isinstance(value, str):
            if problem := text_problem(value):
                errors.append(f"{shown}: the value {problem}.")
            elif len(value) > MAX_METADATA_VALUE_LENGTH:
                errors.append(
                    f"{shown}: the value is {len(value)} characters long: "
                    f"at most {MAX_METADATA_VALUE_LENGTH}."
                )
    return errors


def _shown(key: str) -> str:
    """A key as an error message may quote it: short, and printable whatever it holds."""
    text = key if len(key) <= 40 else key[:40] + "…"
    return ascii(text) if text_problem(text) else repr(text)
