"""Per-node provider options: ``provider.<name>.<option>`` entries of ``node.metadata``.

Node metadata is str → str, so every option arrives as text and is parsed here. A blank value
counts as unset. A value that does not parse, or an option name the provider does not know
(usually a typo), is a ``missing_config`` error naming the key, so the operator can fix the
genome instead of wondering why a setting had no effect.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping

from workers.providers.base import ProviderError

PREFIX = "provider."


class ProviderOptions:
    """The options of one provider on one node."""

    def __init__(self, metadata: Mapping[str, str], provider: str) -> None:
        self.provider = provider
        self.prefix = f"{PREFIX}{provider}."
        self._values = {
            key.removeprefix(self.prefix): value
            for key, value in metadata.items()
            if key.startswith(self.prefix) and value.strip()
        }

    def key(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def require_known(self, known: Iterable[str]) -> None:
        known = sorted(known)
        unknown = sorted(set(self._values) - set(known))
        if unknown:
            keys = ", ".join(self.key(name) for name in unknown)
            valid = ", ".join(self.key(name) for name in known) or "none"
            raise ProviderError(
                "missing_config", f"unknown node metadata {keys}; {self.provider} options: {valid}"
            )

    def has(self, name: str) -> bool:
        return name in self._values

    def text(self, name: str, default: str) -> str:
        return self._values.get(name, default)

    def optional_text(self, name: str) -> str | None:
        return self._values.get(name)

    def invalid(self, name: str, expected: str) -> ProviderError:
        value = self._values.get(name, "")
        return ProviderError(
            "missing_config", f"node metadata {self.key(name)}={value!r} is invalid: {expected}"
        )

    def choice(self, name: str, choices: Iterable[str], default: str) -> str:
        choices = tuple(choices)
        value = self._values.get(name, default).strip().lower()
        if value not in choices:
            raise self.invalid(name, f"expected one of {', '.join(choices)}")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        value = self._values.get(name)
        if value is None:
            return default
        normalized = value.strip().lower()
        if normalized in ("true", "1", "yes", "on"):
            return True
        if normalized in ("false", "0", "no", "off"):
            return False
        raise self.invalid(name, "expected true or false")

    def integer(self, name: str, default: int, *, minimum: int = 0) -> int:
        value = self._values.get(name)
        if value is None:
            return default
        try:
            number = int(value.strip())
        except ValueError:
            raise self.invalid(name, f"expected a whole number ≥ {minimum}") from None
        if number < minimum:
            raise self.invalid(name, f"expected a whole number ≥ {minimum}")
        return number

    def optional_integer(self, name: str, *, minimum: int = 0) -> int | None:
        return self.integer(name, minimum, minimum=minimum) if self.has(name) else None

    def number(
        self, name: str, default: float, *, minimum: float, maximum: float | None = None
    ) -> float:
        value = self._values.get(name)
        if value is None:
            return default
        expected = (
            f"expected a number from {minimum} to {maximum}"
            if maximum is not None
            else f"expected a number > {minimum}"
        )
        try:
            number = float(value.strip())
        except ValueError:
            raise self.invalid(name, expected) from None
        in_range = minimum <= number <= maximum if maximum is not None else number > minimum
        if not (in_range and math.isfinite(number)):
            raise self.invalid(name, expected)
        return number

    def comma_list(self, name: str) -> list[str]:
        value = self._values.get(name, "")
        return [item.strip() for item in value.split(",") if item.strip()]

    def json_string_list(self, name: str) -> list[str] | None:
        value = self._values.get(name)
        if value is None:
            return None
        expected = 'expected a non-empty JSON list of strings, e.g. ["python", "agent.py"]'
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            raise self.invalid(name, expected) from None
        if (
            not isinstance(parsed, list)
            or not parsed
            or not all(isinstance(item, str) for item in parsed)
        ):
            raise self.invalid(name, expected)
        return list(parsed)
