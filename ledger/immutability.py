"""Database triggers that make ``ledger_ledgerevent`` append-only.

Installed by migration 0002 on SQLite and PostgreSQL. With them in place the
database itself refuses UPDATE and DELETE (and, on PostgreSQL, TRUNCATE) of
ledger events, whatever code or tool issues the statement. Only dropping the
triggers, which needs schema rights, lifts the guard; ``ledger_verify`` then
still detects any change through the hash chain.
"""

from __future__ import annotations

from django.db.backends.base.base import BaseDatabaseWrapper

TABLE = "ledger_ledgerevent"

_INSTALL = {
    "sqlite": [
        f"""CREATE TRIGGER IF NOT EXISTS ledger_event_refuse_update
            BEFORE UPDATE ON {TABLE}
            BEGIN SELECT RAISE(ABORT, 'ledger events are append-only: UPDATE refused'); END""",
        f"""CREATE TRIGGER IF NOT EXISTS ledger_event_refuse_delete
            BEFORE DELETE ON {TABLE}
            BEGIN SELECT RAISE(ABORT, 'ledger events are append-only: DELETE refused'); END""",
    ],
    "postgresql": [
        """CREATE OR REPLACE FUNCTION ledger_event_refuse_change() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION 'ledger events are append-only: % refused', TG_OP
                    USING ERRCODE = 'insufficient_privilege';
            END $$""",
        f"DROP TRIGGER IF EXISTS ledger_event_refuse_change ON {TABLE}",
        f"""CREATE TRIGGER ledger_event_refuse_change
            BEFORE UPDATE OR DELETE ON {TABLE}
            FOR EACH ROW EXECUTE FUNCTION ledger_event_refuse_change()""",
        f"DROP TRIGGER IF EXISTS ledger_event_refuse_truncate ON {TABLE}",
        f"""CREATE TRIGGER ledger_event_refuse_truncate
            BEFORE TRUNCATE ON {TABLE}
            FOR EACH STATEMENT EXECUTE FUNCTION ledger_event_refuse_change()""",
    ],
}

_DROP = {
    "sqlite": [
        "DROP TRIGGER IF EXISTS ledger_event_refuse_update",
        "DROP TRIGGER IF EXISTS ledger_event_refuse_delete",
    ],
    "postgresql": [
        f"DROP TRIGGER IF EXISTS ledger_event_refuse_change ON {TABLE}",
        f"DROP TRIGGER IF EXISTS ledger_event_refuse_truncate ON {TABLE}",
    ],
}


def _statements(table: dict[str, list[str]], connection: BaseDatabaseWrapper) -> list[str]:
    try:
        return table[connection.vendor]
    except KeyError:
        raise NotImplementedError(
            f"append-only ledger triggers are not written for {connection.vendor!r}; "
            "use PostgreSQL or SQLite"
        ) from None


def install_guard(connection: BaseDatabaseWrapper) -> None:
    with connection.cursor() as cursor:
        for statement in _statements(_INSTALL, connection):
            cursor.execute(statement)


def drop_guard(connection: BaseDatabaseWrapper) -> None:
    with connection.cursor() as cursor:
        for statement in _statements(_DROP, connection):
            cursor.execute(statement)
