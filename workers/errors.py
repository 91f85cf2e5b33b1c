"""The one error for input a user can correct: a 4xx that names each bad field.

Services raise ``Rejected`` before they change anything; edges (the API, the CLI, the
pages) show ``errors`` (field → messages) and change nothing either.
"""

from __future__ import annotations


class Rejected(ValueError):
    """Input that cannot be acted on as given; ``errors`` maps field → messages."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))
        self.errors = errors


class NoOrganization(Rejected):
    def __init__(self) -> None:
        super().__init__(
            {"organization": ["there is no organization yet; run `manage.py org_bootstrap`"]}
        )


class IdempotencyConflict(Rejected):
    """The Idempotency-Key was used before for a different request (a 409)."""

    def __init__(self) -> None:
        super().__init__(
            {
                "idempotency_key": [
                    "this Idempotency-Key was already used for a different request; "
                    "use a new key for a new directive"
                ]
            }
        )
