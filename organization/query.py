"""Lenient reads of a page's query string, the same at every page (like ``access.py``, for
every app's edges).

A page's ``?page=``, ``?seq=`` or ``?q=`` comes from links and from people typing: a value it
cannot use is no choice (the first page, no filter), never an error. Numbers are decimal
digits within bounds, so ``²`` (a digit to ``str.isdigit``, not to ``int``) or five thousand
nines (past Python's limit on digits ``int`` converts) cannot turn into a 500.
"""

from __future__ import annotations

from django.http import QueryDict

# Larger than any seq or page a page links to, and well within a PostgreSQL bigint.
NUMBER_BELOW = 10**18


def query_int(
    params: QueryDict, name: str, *, least: int = 0, below: int = NUMBER_BELOW
) -> int | None:
    """``?<name>=<n>`` with ``least <= n < below``, else None (absent, no number, out of bounds)."""
    value = params.get(name, "").strip()
    if not value.isdecimal() or len(value) > len(str(below)):
        return None
    number = int(value)
    return number if least <= number < below else None


def query_page(params: QueryDict, *, below: int = NUMBER_BELOW) -> int:
    """``?page=<n>``, counted from 1: the first page when absent or not a page below ``below``."""
    return query_int(params, "page", least=1, below=below) or 1


def query_text(params: QueryDict, name: str, *, max_length: int) -> str:
    """``?<name>=<text>`` stripped and cut to ``max_length`` characters ("" when absent)."""
    return params.get(name, "").strip()[:max_length]
