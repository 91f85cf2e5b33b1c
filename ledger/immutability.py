"""Database triggers that guard the ledger's tables, on SQLite and PostgreSQL.

Three guards, each installed by a migration:

* ``events`` (migration 0002): ``ledger_ledgerevent`` is append-only.
* ``traces`` (migration 0005): ``ledger_tasktrace`` and ``ledger_tasktracescope`` are
  append-only, since fitness and trial decisions read them.
* ``head`` (migration 0005): ``ledger_ledgerhead`` is never deleted; an UPDATE may only move it
  forward, to the last stored event (its seq and hash); a new head row is accepted only at the
  genesis of an empty ledger (after a flush), so a deleted head cannot be quietly recreated.

With them in place the database itself refuses UPDATE and DELETE (and, on PostgreSQL,
TRUNCATE) whatever code or tool issues the statement. Only dropping the triggers, which needs
schema rights, lifts a guard; ``ledger_verify`` then still detects any change, through the hash
chain and the trace hashes the chain records.

SQLite drops a table's triggers when Django rebuilds the table (any ``AlterField`` there): a
migration that alters one of these tables must be state-only or reinstall the guard.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db.backends.base.base import BaseDatabaseWrapper

from ledger.chain import GENESIS_HASH

EVENTS = "events"
TRACES = "traces"
HEAD = "head"
ALL_GUARDS = (EVENTS, TRACES, HEAD)

EVENT_TABLE = "ledger_ledgerevent"
TRACE_TABLES = ("ledger_tasktrace", "ledger_tasktracescope")
HEAD_TABLE = "ledger_ledgerhead"
TABLE = EVENT_TABLE  # the name older callers know

# A head row may be inserted only as the genesis of an empty ledger (the head of a flushed
# database is created by the first append); a head row already there makes the insert a
# conflict, which the append's INSERT … ON CONFLICT DO NOTHING / OR IGNORE drops.
_SQLITE_HEAD_INSERT_REFUSED = f"""
    NEW.id != 1 OR (
        NOT EXISTS (SELECT 1 FROM {HEAD_TABLE} WHERE id = 1)
        AND (NEW.seq != 0 OR NEW.hash != '{GENESIS_HASH}'
             OR EXISTS (SELECT 1 FROM {EVENT_TABLE}))
    )"""
_SQLITE_HEAD_UPDATE_REFUSED = f"""
    NEW.id IS NOT OLD.id OR NEW.seq <= OLD.seq
    OR NEW.seq IS NOT (SELECT max(seq) FROM {EVENT_TABLE})
    OR NEW.hash IS NOT (SELECT hash FROM {EVENT_TABLE} WHERE seq = NEW.seq)"""

_PG_HEAD_FUNCTION = f"""CREATE OR REPLACE FUNCTION ledger_head_guard() RETURNS trigger
    LANGUAGE plpgsql AS $$
    DECLARE
        last_seq bigint;
        last_hash text;
    BEGIN
        IF TG_OP IN ('DELETE', 'TRUNCATE') THEN
            RAISE EXCEPTION 'the ledger head cannot be deleted: % refused', TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        SELECT seq, hash INTO last_seq, last_hash
            FROM {EVENT_TABLE} ORDER BY seq DESC LIMIT 1;
        IF TG_OP = 'INSERT' THEN
            IF NEW.id <> 1 OR (
                NOT EXISTS (SELECT 1 FROM {HEAD_TABLE} WHERE id = 1)
                AND (NEW.seq <> 0 OR NEW.hash <> '{GENESIS_HASH}' OR last_seq IS NOT NULL)
            ) THEN
                RAISE EXCEPTION 'a ledger head is created only at the genesis of an empty '
                    'ledger: INSERT refused' USING ERRCODE = 'insufficient_privilege';
            END IF;
            RETURN NEW;
        END IF;
        IF NEW.id <> OLD.id OR NEW.seq <= OLD.seq
            OR NEW.seq IS DISTINCT FROM last_seq OR NEW.hash IS DISTINCT FROM last_hash THEN
            RAISE EXCEPTION 'the ledger head moves only forward, to the last event: '
                'UPDATE refused' USING ERRCODE = 'insufficient_privilege';
        END IF;
        RETURN NEW;
    END $$"""


def _pg_refuse_function(name: str, what: str) -> str:
    return f"""CREATE OR REPLACE FUNCTION {name}() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION '{what} are append-only: % refused', TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END $$"""


def _pg_triggers(table: str, trigger: str, function: str, row_events: str) -> list[str]:
    return [
        f"DROP TRIGGER IF EXISTS {trigger} ON {table}",
        f"""CREATE TRIGGER {trigger}
            BEFORE {row_events} ON {table}
            FOR EACH ROW EXECUTE FUNCTION {function}()""",
        f"DROP TRIGGER IF EXISTS {trigger}_truncate ON {table}",
        f"""CREATE TRIGGER {trigger}_truncate
            BEFORE TRUNCATE ON {table}
            FOR EACH STATEMENT EXECUTE FUNCTION {function}()""",
    ]


def _sqlite_refuse(trigger: str, operation: str, table: str, message: str) -> str:
    return f"""CREATE TRIGGER IF NOT EXISTS {trigger}
        BEFORE {operation} ON {table}
        BEGIN SELECT RAISE(ABORT, '{message}: {operation} refused'); END"""


def _sqlite_refuse_when(trigger: str, operation: str, table: str, when: str, message: str) -> str:
    return f"""CREATE TRIGGER IF NOT EXISTS {trigger}
        BEFORE {operation} ON {table} WHEN {when}
        BEGIN SELECT RAISE(ABORT, '{message}: {operation} refused'); END"""


_TRACE_TRIGGERS = {"ledger_tasktrace": "ledger_trace", "ledger_tasktracescope": "ledger_scope"}
_ROW_CHANGES = "UPDATE OR DELETE"
_TRACES_APPEND_ONLY = "task traces are append-only"
_HEAD_NO_DELETE = "the ledger head cannot be deleted"

_INSTALL: dict[str, dict[str, list[str]]] = {
    EVENTS: {
        # Written as migration 0002 wrote it: its trigger names stay what databases have.
        "sqlite": [
            _sqlite_refuse(
                "ledger_event_refuse_update", "UPDATE", EVENT_TABLE, "ledger events are append-only"
            ),
            _sqlite_refuse(
                "ledger_event_refuse_delete", "DELETE", EVENT_TABLE, "ledger events are append-only"
            ),
        ],
        "postgresql": [
            _pg_refuse_function("ledger_event_refuse_change", "ledger events"),
            f"DROP TRIGGER IF EXISTS ledger_event_refuse_change ON {EVENT_TABLE}",
            f"""CREATE TRIGGER ledger_event_refuse_change
                BEFORE UPDATE OR DELETE ON {EVENT_TABLE}
                FOR EACH ROW EXECUTE FUNCTION ledger_event_refuse_change()""",
            f"DROP TRIGGER IF EXISTS ledger_event_refuse_truncate ON {EVENT_TABLE}",
            f"""CREATE TRIGGER ledger_event_refuse_truncate
                BEFORE TRUNCATE ON {EVENT_TABLE}
                FOR EACH STATEMENT EXECUTE FUNCTION ledger_event_refuse_change()""",
        ],
    },
    TRACES: {
        "sqlite": [
            _sqlite_refuse(f"{prefix}_refuse_{verb.lower()}", verb, table, _TRACES_APPEND_ONLY)
            for table, prefix in _TRACE_TRIGGERS.items()
            for verb in ("UPDATE", "DELETE")
        ],
        "postgresql": [
            _pg_refuse_function("ledger_trace_refuse_change", "task traces"),
            *(
                statement
                for table, prefix in _TRACE_TRIGGERS.items()
                for statement in _pg_triggers(
                    table, f"{prefix}_refuse_change", "ledger_trace_refuse_change", _ROW_CHANGES
                )
            ),
        ],
    },
    HEAD: {
        "sqlite": [
            _sqlite_refuse("ledger_head_refuse_delete", "DELETE", HEAD_TABLE, _HEAD_NO_DELETE),
            _sqlite_refuse_when(
                "ledger_head_forward_only",
                "UPDATE",
                HEAD_TABLE,
                _SQLITE_HEAD_UPDATE_REFUSED,
                "the ledger head moves only forward, to the last event",
            ),
            _sqlite_refuse_when(
                "ledger_head_created_at_genesis",
                "INSERT",
                HEAD_TABLE,
                _SQLITE_HEAD_INSERT_REFUSED,
                "a ledger head is created only at the genesis of an empty ledger",
            ),
        ],
        "postgresql": [
            _PG_HEAD_FUNCTION,
            *_pg_triggers(
                HEAD_TABLE, "ledger_head_guard", "ledger_head_guard", f"INSERT OR {_ROW_CHANGES}"
            ),
        ],
    },
}

_DROP: dict[str, dict[str, list[str]]] = {
    EVENTS: {
        "sqlite": [
            "DROP TRIGGER IF EXISTS ledger_event_refuse_update",
            "DROP TRIGGER IF EXISTS ledger_event_refuse_delete",
        ],
        "postgresql": [
            f"DROP TRIGGER IF EXISTS ledger_event_refuse_change ON {EVENT_TABLE}",
            f"DROP TRIGGER IF EXISTS ledger_event_refuse_truncate ON {EVENT_TABLE}",
        ],
    },
    TRACES: {
        "sqlite": [
            f"DROP TRIGGER IF EXISTS {prefix}_refuse_{operation}"
            for prefix in _TRACE_TRIGGERS.values()
            for operation in ("update", "delete")
        ],
        "postgresql": [
            f"DROP TRIGGER IF EXISTS {prefix}_refuse_change{suffix} ON {table}"
            for table, prefix in _TRACE_TRIGGERS.items()
            for suffix in ("", "_truncate")
        ],
    },
    HEAD: {
        "sqlite": [
            "DROP TRIGGER IF EXISTS ledger_head_refuse_delete",
            "DROP TRIGGER IF EXISTS ledger_head_forward_only",
            "DROP TRIGGER IF EXISTS ledger_head_created_at_genesis",
        ],
        "postgresql": [
            f"DROP TRIGGER IF EXISTS ledger_head_guard ON {HEAD_TABLE}",
            f"DROP TRIGGER IF EXISTS ledger_head_guard_truncate ON {HEAD_TABLE}",
        ],
    },
}


def _statements(
    table: dict[str, dict[str, list[str]]], guards: Iterable[str], connection: BaseDatabaseWrapper
) -> list[str]:
    statements = []
    for guard in guards:
        try:
            statements += table[guard][connection.vendor]
        except KeyError:
            raise NotImplementedError(
                f"ledger guard {guard!r} is not written for {connection.vendor!r}; "
                "use PostgreSQL or SQLite"
            ) from None
    return statements


def install_guard(connection: BaseDatabaseWrapper, *, guards: Iterable[str] = ALL_GUARDS) -> None:
    """Install the named guards (all of them by default); installing twice is harmless."""
    with connection.cursor() as cursor:
        for statement in _statements(_INSTALL, guards, connection):
            cursor.execute(statement)


def drop_guard(connection: BaseDatabaseWrapper, *, guards: Iterable[str] = ALL_GUARDS) -> None:
    """Drop the named guards (all of them by default), e.g. around a test's flush."""
    with connection.cursor() as cursor:
        for statement in _statements(_DROP, guards, connection):
            cursor.execute(statement)
