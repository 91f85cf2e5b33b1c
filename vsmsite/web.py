"""Django's ASGI handler for the web process, with its database connections bounded.

Django runs each HTTP request's sync code (middleware, views) on a thread made for
that request (asgiref's ``ThreadSensitiveContext``), and a database connection
belongs to the thread that opened it. With ``CONN_MAX_AGE`` above zero the
connection outlives its request: the thread is gone, nothing will reuse it, and it
stays open until garbage collection. Twenty clients made daphne hold 98 connections
and PostgreSQL answer "too many clients already".

``WebHandler`` therefore

* lets at most ``max_requests`` requests run at once (the others wait their turn,
  in order of arrival), so the web process holds at most that many connections for
  HTTP, plus one for the websockets (their ORM calls share one thread and keep
  their connection, as ``CONN_MAX_AGE`` means);
* closes the request thread's connections when the request is over, whatever the
  setting, on the request's own thread (a connection must be closed where it
  was opened).
"""

from __future__ import annotations

import asyncio
from typing import Any

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.core.handlers.asgi import ASGIHandler
from django.db import connections


def _close_this_threads_connections() -> None:
    for connection in connections.all(initialized_only=True):
        connection.close()


class WebHandler(ASGIHandler):
    def __init__(self, *, max_requests: int) -> None:
        super().__init__()
        if max_requests < 1:
            raise ValueError("max_requests must be at least 1")
        self.max_requests = max_requests
        self._slots: asyncio.Semaphore | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        if self._slots is None:  # made on daphne's event loop, at the first request
            self._slots = asyncio.Semaphore(self.max_requests)
        async with self._slots, ThreadSensitiveContext():
            try:
                await self.handle(scope, receive, send)
            finally:
                # Inside the request's context: this runs on the thread its views used.
                await sync_to_async(_close_this_threads_connections, thread_sensitive=True)()
