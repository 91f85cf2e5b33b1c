"""Websocket routes. The live ledger stream joins here (see docs/architecture.md)."""

from __future__ import annotations

from typing import Any

websocket_urlpatterns: list[Any] = []
