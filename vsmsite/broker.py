"""The embedded Celery broker: a kombu virtual transport on a SQLite file.

Why not kombu's own serverless transports (measured on these machines, see
docs/operations.md):

* ``filesystem://`` deletes a message file when it hands it to a consumer, so a
  worker killed mid-task loses the message even with ``acks_late``; its
  ``_put`` also creates the file before writing it, and a fast poller read
  half-written messages (``JSONDecodeError``, kombu issue #1551).
* ``sqla+sqlite`` managed 50-61 tasks/s and has no fanout (no remote control).

This transport keeps every message as a row until the consumer *acknowledges*
it. Fetching a message only claims the row (``claimed_by``): an ack deletes the
row, a requeue releases it, and a claim held by a process that no longer exists
(a worker killed with SIGKILL) is released by the next poller, so the message is
delivered again. Claims are taken with ``UPDATE ... WHERE claimed_by IS NULL``
and a rowcount check, so two processes never receive the same message. Writes
are single short transactions in WAL mode; idle polls are plain reads.

A consumer does not wait out its polling interval for a message published
meanwhile: each draining transport binds a UNIX datagram socket (its doorbell) in a
directory beside the broker file, every publish rings each doorbell there once the
row is committed, and an ack rings the acking process's own (a consumer whose
prefetch slots were full may take the next message). The poll stays as the
fallback: a lost or unsent ring costs at most one interval, never a message.

The broker is for one machine (every process opens the same file); production
runs on Redis.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable
from queue import Empty
from typing import Any

from kombu.transport import TRANSPORT_ALIASES, virtual
from kombu.utils.objects import cached_property

from vsmsite.broker_paths import doorbell_directory

logger = logging.getLogger(__name__)

# Marks a message handed out again after its consumer went away.
MARK_REDELIVERED = (
    "payload = json_set(payload, '$.properties.delivery_info.redelivered', json('true'))"
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS kombu_message (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    delivery_tag TEXT NOT NULL,
    payload TEXT NOT NULL,
    expires_at REAL,
    claimed_by TEXT
);
CREATE INDEX IF NOT EXISTS kombu_message_ready ON kombu_message (queue, claimed_by, id);
CREATE INDEX IF NOT EXISTS kombu_message_claims ON kombu_message (claimed_by);
CREATE TABLE IF NOT EXISTS kombu_binding (
    exchange TEXT NOT NULL,
    routing_key TEXT NOT NULL,
    pattern TEXT NOT NULL,
    queue TEXT NOT NULL,
    PRIMARY KEY (exchange, routing_key, pattern, queue)
);
"""

# How often a poller looks for claims left behind by dead processes (seconds).
STALE_CLAIM_SWEEP_INTERVAL = 1.0
# How long a publisher trusts its list of doorbells (seconds): a consumer started
# since is rung at most this much later, and polls meanwhile.
DOORBELL_RELIST_INTERVAL = 1.0


def _process_stat(pid: int) -> tuple[str, str] | None:
    """(state, start time in clock ticks since boot) of ``pid`` (Linux), or None."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return fields[0], fields[19]
    except (OSError, IndexError):
        return None


def _process_start_time(pid: int) -> str | None:
    """Start time of ``pid``, or None.

    Stored beside the pid in a claim so that a reused pid is not mistaken for
    the process that took the claim.
    """
    stat = _process_stat(pid)
    return stat[1] if stat else None


def _claim_token() -> str:
    pid = os.getpid()
    return f"{pid}:{_process_start_time(pid) or '?'}"


def _claim_holder_alive(token: str) -> bool:
    pid_text, _, started = token.partition(":")
    try:
        pid = int(pid_text)
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (ValueError, PermissionError):
        return True
    stat = _process_stat(pid)
    if stat is None:
        return True  # no /proc to read: trust the signal
    state, start_time = stat
    if state in ("Z", "X"):
        return False  # a zombie answers signals but will never ack or release anything
    return not started or started == "?" or start_time == started


class Doorbells:
    """Rings every consumer of one broker file: a byte to each socket in its directory.

    Never raises and never blocks: a full socket already has a ring pending, and a
    socket nobody is bound to any more (its process died) is removed."""

    def __init__(self, database: str) -> None:
        self.directory = doorbell_directory(database)
        self._paths: list[str] = []
        self._listed_at = float("-inf")
        self._lock = threading.Lock()
        self._sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sender.setblocking(False)

    def ring(self) -> None:
        for path in self._current_paths():
            try:
                self._sender.sendto(b"\0", path)
            except BlockingIOError:
                pass  # a ring is pending there already
            except (ConnectionRefusedError, FileNotFoundError):
                self._forget(path)
            except OSError:
                logger.debug("could not ring the doorbell %s", path, exc_info=True)

    def _current_paths(self) -> list[str]:
        if time.monotonic() - self._listed_at > DOORBELL_RELIST_INTERVAL:
            with self._lock:
                try:
                    names = os.listdir(self.directory)
                except FileNotFoundError:
                    names = []
                self._paths = [
                    os.path.join(self.directory, n) for n in names if n.endswith(".sock")
                ]
                self._listed_at = time.monotonic()
        return self._paths

    def _forget(self, path: str) -> None:
        """Nobody is bound there (its consumer died without closing): remove it."""
        with self._lock:
            self._paths = [p for p in self._paths if p != path]
        with contextlib.suppress(OSError):
            os.unlink(path)


class Doorbell:
    """One consumer's socket: rung by publishers, waited on instead of a bare sleep."""

    def __init__(self, directory: str) -> None:
        os.makedirs(directory, exist_ok=True)
        self.path = os.path.join(directory, f"{os.getpid()}-{uuid.uuid4().hex[:12]}.sock")
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._socket.setblocking(False)
        self._socket.bind(self.path)
        # poll, not select: a worker's descriptors may number past select's 1024.
        self._poller = select.poll()
        self._poller.register(self._socket, select.POLLIN)

    def wait(self, seconds: float) -> None:
        """Return when rung (at once if a ring came since the last wait) or after ``seconds``."""
        if self._poller.poll(seconds * 1000.0):
            try:
                while True:
                    self._socket.recv(64)
            except BlockingIOError:
                pass

    def ring(self) -> None:
        with contextlib.suppress(OSError):  # a ring is pending already
            self._socket.sendto(b"\0", self.path)

    def close(self) -> None:
        self._socket.close()
        with contextlib.suppress(OSError):
            os.unlink(self.path)


_doorbells_lock = threading.Lock()
_doorbells: dict[str, Doorbells] = {}


def _forget_doorbells_after_fork() -> None:
    global _doorbells_lock, _doorbells
    _doorbells_lock = threading.Lock()
    _doorbells = {}


os.register_at_fork(after_in_child=_forget_doorbells_after_fork)


def doorbells_for(database: str) -> Doorbells:
    """This process's ringer of the consumers of ``database`` (one per broker file)."""
    with _doorbells_lock:
        bells = _doorbells.get(database)
        if bells is None:
            bells = _doorbells[database] = Doorbells(database)
        return bells


class QoS(virtual.QoS):
    """Acks and rejects act on the message's row; nothing is re-published."""

    channel: Channel

    def ack(self, delivery_tag: str) -> None:
        self.channel._settle(delivery_tag, requeue=False)
        super().ack(delivery_tag)
        self.channel.connection.ring_own_doorbell()  # a prefetch slot is free

    def reject(self, delivery_tag: str, requeue: bool = False) -> None:
        self.channel._settle(delivery_tag, requeue=requeue)
        self._quick_ack(delivery_tag)
        self.channel.connection.ring_own_doorbell()

    def restore_unacked(self) -> list[tuple[BaseException, Any]]:
        self._flush()
        for delivery_tag in list(self._delivered):
            self.channel._settle(delivery_tag, requeue=True)
        self._delivered.clear()
        return []


class Channel(virtual.Channel):
    QoS = QoS
    supports_fanout = True
    # Message bodies stay readable JSON in the table.
    body_encoding = "utf-8"

    def __init__(self, connection: Any, **kwargs: Any) -> None:
        super().__init__(connection, **kwargs)
        self._claims: dict[str, int] = {}
        self._claims_lock = threading.Lock()
        self._last_sweep = 0.0

    # -- connection ---------------------------------------------------------

    @cached_property
    def _path(self) -> str:
        path = self.connection.client.transport_options.get("database")
        if not path:
            raise ValueError("the embedded broker needs transport option 'database'")
        return str(path)

    @cached_property
    def _db(self) -> sqlite3.Connection:
        path = self._path
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        # Acks may arrive from another thread than the consumer's (Celery's
        # threaded pools); every use goes through self._lock.
        db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(SCHEMA)
        return db

    @cached_property
    def _lock(self) -> threading.Lock:
        return threading.Lock()

    @cached_property
    def _token(self) -> str:
        return _claim_token()

    def _execute(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Cursor:
        with self._lock:
            return self._db.execute(sql, tuple(params))

    def close(self) -> None:
        super().close()
        if "_db" in self.__dict__:
            with self._lock:
                self._db.close()
            del self.__dict__["_db"]

    # -- the virtual channel interface --------------------------------------

    def _put(self, queue: str, message: dict[str, Any], **kwargs: Any) -> None:
        properties = message.get("properties", {})
        expiration = properties.get("expiration")
        expires_at = time.time() + float(expiration) / 1000.0 if expiration else None
        self._execute(
            "INSERT INTO kombu_message (queue, delivery_tag, payload, expires_at) "
            "VALUES (?, ?, ?, ?)",
            (queue, properties.get("delivery_tag", ""), json.dumps(message), expires_at),
        )
        # Autocommitted: the row is visible to whoever the ring wakes.
        doorbells_for(self._path).ring()

    def _get(self, queue: str, timeout: float | None = None) -> dict[str, Any]:
        self._maybe_release_stale_claims()
        while True:
            row = self._execute(
                "SELECT id, payload, expires_at FROM kombu_message "
                "WHERE queue = ? AND claimed_by IS NULL ORDER BY id LIMIT 1",
                (queue,),
            ).fetchone()
            if row is None:
                raise Empty()
            row_id, payload, expires_at = row
            if expires_at is not None and expires_at < time.time():
                self._execute("DELETE FROM kombu_message WHERE id = ?", (row_id,))
                continue
            claimed = self._execute(
                "UPDATE kombu_message SET claimed_by = ? WHERE id = ? AND claimed_by IS NULL",
                (self._token, row_id),
            ).rowcount
            if claimed != 1:
                continue  # another consumer claimed it first: look again
            message: dict[str, Any] = json.loads(payload)
            with self._claims_lock:
                self._claims[message["properties"]["delivery_tag"]] = row_id
            return message

    def _settle(self, delivery_tag: str, *, requeue: bool) -> None:
        with self._claims_lock:
            row_id = self._claims.pop(delivery_tag, None)
        if row_id is None:
            return
        if requeue:
            self._execute(
                f"UPDATE kombu_message SET claimed_by = NULL, {MARK_REDELIVERED} WHERE id = ?",
                (row_id,),
            )
        else:
            self._execute("DELETE FROM kombu_message WHERE id = ?", (row_id,))

    def _restore(self, message: Any) -> None:
        tag = message.delivery_tag
        with self._claims_lock:
            known = tag in self._claims
        if known:
            self._settle(tag, requeue=True)
        else:
            super()._restore(message)

    def _maybe_release_stale_claims(self) -> None:
        now = time.monotonic()
        if now - self._last_sweep < STALE_CLAIM_SWEEP_INTERVAL:
            return
        self._last_sweep = now
        holders = [
            token
            for (token,) in self._execute(
                "SELECT DISTINCT claimed_by FROM kombu_message WHERE claimed_by IS NOT NULL"
            ).fetchall()
        ]
        for token in holders:
            if token != self._token and not _claim_holder_alive(token):
                self._execute(
                    f"UPDATE kombu_message SET claimed_by = NULL, {MARK_REDELIVERED} "
                    "WHERE claimed_by = ?",
                    (token,),
                )

    def _purge(self, queue: str) -> int:
        return self._execute(
            "DELETE FROM kombu_message WHERE queue = ? AND claimed_by IS NULL", (queue,)
        ).rowcount

    def _size(self, queue: str) -> int:
        row = self._execute(
            "SELECT count(*) FROM kombu_message WHERE queue = ? AND claimed_by IS NULL", (queue,)
        ).fetchone()
        return int(row[0])

    def _delete(self, queue: str, *args: Any, **kwargs: Any) -> None:
        super()._delete(queue, *args, **kwargs)
        self._execute("DELETE FROM kombu_binding WHERE queue = ?", (queue,))
        self._execute("DELETE FROM kombu_message WHERE queue = ? AND claimed_by IS NULL", (queue,))

    # -- bindings live in the database so fanout reaches other processes ----

    def _queue_bind(self, exchange: str, routing_key: str, pattern: str, queue: str) -> None:
        self._execute(
            "INSERT OR IGNORE INTO kombu_binding (exchange, routing_key, pattern, queue) "
            "VALUES (?, ?, ?, ?)",
            (exchange, routing_key or "", pattern or "", queue),
        )

    def get_table(self, exchange: str) -> list[tuple[str, str, str]]:
        rows = self._execute(
            "SELECT routing_key, pattern, queue FROM kombu_binding WHERE exchange = ?",
            (exchange,),
        ).fetchall()
        return [(routing_key, pattern, queue) for routing_key, pattern, queue in rows]

    def _put_fanout(
        self, exchange: str, message: dict[str, Any], routing_key: str, **kwargs: Any
    ) -> None:
        for _routing_key, _pattern, queue in self.get_table(exchange):
            self._put(queue, message, **kwargs)


class Transport(virtual.Transport):
    Channel = Channel
    polling_interval = 0.01
    default_port = 0  # type: ignore[assignment]  # kombu declares it None
    driver_type = "sqlite"
    driver_name = "embedded-sqlite"
    implements = virtual.Transport.implements.extend(
        asynchronous=False, exchange_type=frozenset(["direct", "topic", "fanout"])
    )

    def __init__(self, client: Any, **kwargs: Any) -> None:
        super().__init__(client, **kwargs)
        self._doorbell: Doorbell | None = None
        self._doorbell_failed = False

    # kombu's two base classes declare this differently; the virtual one's is kept.
    def drain_events(self, connection: Any, timeout: float | None = None) -> None:  # type: ignore[override]
        """kombu's loop, waiting on this consumer's doorbell where kombu sleeps."""
        doorbell = self._own_doorbell()
        started = time.monotonic()
        interval = self.polling_interval
        if timeout and interval and interval > timeout:
            interval = timeout
        cycle = self.cycle
        assert cycle is not None, "kombu sets the cycle up with the transport"
        while True:
            try:
                cycle.get(self._deliver, timeout=timeout)
            except Empty:
                if timeout is not None and time.monotonic() - started >= timeout:
                    raise TimeoutError() from None
                if interval is not None:
                    if doorbell is None:
                        time.sleep(interval)
                    else:
                        doorbell.wait(interval)
            else:
                return

    def _own_doorbell(self) -> Doorbell | None:
        """Bound before the first poll, so a message published after it rings."""
        if self._doorbell is None and not self._doorbell_failed:
            database = self.client.transport_options.get("database")  # type: ignore[union-attr]
            try:
                self._doorbell = Doorbell(doorbell_directory(str(database)))
            except OSError:
                self._doorbell_failed = True
                logger.warning("no doorbell for the embedded broker; polling only", exc_info=True)
        return self._doorbell

    def ring_own_doorbell(self) -> None:
        if self._doorbell is not None:
            self._doorbell.ring()

    def close_connection(self, connection: Any) -> None:
        if self._doorbell is not None:
            self._doorbell.close()
            self._doorbell = None
        super().close_connection(connection)

    def driver_version(self) -> str:
        return sqlite3.sqlite_version


def register() -> None:
    """Make ``embedded://`` broker URLs resolve to this transport."""
    TRANSPORT_ALIASES.setdefault("embedded", "vsmsite.broker:Transport")
