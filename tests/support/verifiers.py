"""Acceptance verifiers for tests: registered as an admin would, named by directives."""

from __future__ import annotations

from workers.services.verifiers import verifier_register


def registered(name: str, command: str) -> str:
    """Register ``command`` as the verifier ``name`` and return the name to put in a directive."""
    verifier_register(name=name, command=command, actor="test:admin")
    return name
