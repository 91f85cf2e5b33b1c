"""A websocket client small enough to read in a sitting, for tests and benches against daphne."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
from collections.abc import AsyncIterator


class WebSocketClient:
    """Just enough of RFC 6455 to read a server's frames (no extensions, no subprotocol).

    autobahn's asyncio client cannot load here: daphne, an installed app, has
    already set txaio to Twisted in this process.
    """

    GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        # The code of the server's close frame, once one came.
        self.close_code: int | None = None

    @classmethod
    async def connect(cls, port: int, path: str, headers: dict[str, str]) -> WebSocketClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            f"GET {path} HTTP/1.1",
            f"Host: 127.0.0.1:{port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
            *(f"{name}: {value}" for name, value in headers.items()),
        ]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        answer = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        accept = base64.b64encode(hashlib.sha1((key + cls.GUID).encode()).digest()).decode()
        if " 101 " not in answer.split("\r\n", 1)[0] or accept not in answer:
            raise RuntimeError(f"websocket handshake refused: {answer!r}")
        return cls(reader, writer)

    def _send(self, opcode: int, payload: bytes) -> None:
        # Clients mask every frame; payloads here are control frames (< 126 bytes).
        mask = os.urandom(4)
        masked = bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))
        self.writer.write(bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked)

    async def messages(self) -> AsyncIterator[bytes]:
        fragments: list[bytes] = []
        while True:
            first, second = await self.reader.readexactly(2)
            opcode, length = first & 0x0F, second & 0x7F
            if length >= 126:
                size = 2 if length == 126 else 8
                length = int.from_bytes(await self.reader.readexactly(size), "big")
            mask = await self.reader.readexactly(4) if second & 0x80 else b""
            payload = await self.reader.readexactly(length)
            if mask:
                payload = bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))
            if opcode == 0x8:  # close
                self.close_code = int.from_bytes(payload[:2], "big") if payload else 1005
                return
            if opcode == 0x9:  # ping
                self._send(0xA, payload)
            elif opcode in (0x0, 0x1, 0x2):
                fragments.append(payload)
                if first & 0x80:  # the last fragment of a message
                    yield b"".join(fragments)
                    fragments = []

    async def close(self) -> None:
        self._send(0x8, (1000).to_bytes(2, "big"))
        await self.writer.drain()
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()
