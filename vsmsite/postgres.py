"""psycopg's cache of converted statements, sized for the ledger append.

psycopg turns each statement's ``%s`` placeholders into ``$n`` ones with a regular
expression, and caches the result per statement text, but only for statements of at most
4,096 characters and 50 parameters (``psycopg._queries``; an ORM's multi-row ``INSERT``
rarely repeats, psycopg discussion #628). A hop's ledger append is one data-modifying
``WITH`` of 50 to 110 parameters whose text repeats for every hop of the same shape (the
events and held rows it carries), so without the cache every append is converted again:
measured, 6 of them a directive, the largest piece of psycopg's share of a hop's Python.
"""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)

# A hop's append, with a trace and its scopes, stays well inside both; a long batch (a
# bulk append of hundreds of events, rare) stays uncached, as psycopg intends.
STATEMENT_LENGTH = 16_384
STATEMENT_PARAMS = 400


def cache_long_statements() -> bool:
    """Raise psycopg's limits for caching a statement's conversion; False (and a warning) if
    this psycopg has no such limits, so a new release that moved them is noticed."""
    try:
        from psycopg import _queries
    except ImportError:  # no psycopg: SQLite only
        return False
    if not (
        hasattr(_queries, "MAX_CACHED_STATEMENT_LENGTH")
        and hasattr(_queries, "MAX_CACHED_STATEMENT_PARAMS")
    ):
        logger.warning("psycopg has no statement cache limits to raise; ledger appends uncached")
        return False
    _queries.MAX_CACHED_STATEMENT_LENGTH = max(
        _queries.MAX_CACHED_STATEMENT_LENGTH, STATEMENT_LENGTH
    )
    _queries.MAX_CACHED_STATEMENT_PARAMS = max(
        _queries.MAX_CACHED_STATEMENT_PARAMS, STATEMENT_PARAMS
    )
    return True
