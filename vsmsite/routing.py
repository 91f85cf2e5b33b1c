"""Websocket routes: the live ledger stream and the live alarms, trials and directive pages."""

from __future__ import annotations

from typing import Any

from django.urls import path

from organization.consumers import SubtreeStreamConsumer
from trials.consumers import TrialsConsumer
from workers.consumers import AlarmsConsumer
from workers.directive_consumer import DirectiveConsumer

websocket_urlpatterns: list[Any] = [
    path("ws/events/", SubtreeStreamConsumer.as_asgi()),
    path("ws/alarms/", AlarmsConsumer.as_asgi()),
    path("ws/trials/", TrialsConsumer.as_asgi()),
    path("ws/directives/", DirectiveConsumer.as_asgi()),
]
