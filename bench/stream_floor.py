"""The floor of bench/stream.py: the project's ASGI app plus two bench-only routes.

daphne serves this (``bench.stream_floor:application``) instead of
``vsmsite.asgi:application`` so that the floor runs through the same server,
event loop and channel layer as the stream it is compared with:

* ``/ws/bench-floor/?group=<name>``: a websocket that joins the group and
  relays each ``bench.ping`` message's frame, and does nothing else (no
  login, database or ledger);
* ``POST /bench-floor/ring/?group=<name>``: a ``group_send`` of the request's
  body from daphne's own process, the only way another process reaches
  daphne's consumers through the in-memory layer.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer

from vsmsite.asgi import application as project_application

FLOOR_SOCKET_PATH = "/ws/bench-floor/"
FLOOR_RING_PATH = "/bench-floor/ring/"
PING_TYPE = "bench.ping"


def _group(scope: dict[str, Any]) -> str:
    return parse_qs(scope.get("query_string", b"").decode())["group"][0]


class FloorConsumer(AsyncWebsocketConsumer):  # type: ignore[misc]  # channels is untyped
    async def connect(self) -> None:
        self.group = _group(self.scope)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def bench_ping(self, message: dict[str, Any]) -> None:
        await self.send(text_data=message["frame"])

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard(self.group, self.channel_name)


floor_socket = FloorConsumer.as_asgi()


async def floor_ring(scope: dict[str, Any], receive: Any, send: Any) -> None:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await get_channel_layer().group_send(_group(scope), {"type": PING_TYPE, "frame": body.decode()})
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "websocket" and scope["path"] == FLOOR_SOCKET_PATH:
        await floor_socket(scope, receive, send)
    elif scope["type"] == "http" and scope["path"] == FLOOR_RING_PATH:
        await floor_ring(scope, receive, send)
    else:
        await project_application(scope, receive, send)
