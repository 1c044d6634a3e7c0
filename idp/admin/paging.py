"""Pages of results for the admin pages, the admin API and ``idp``: bounds
from the request, a page of a query or of a list, and times as the API writes them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, func, select

from ..extensions import db

T = TypeVar("T")

DEFAULT_PAGE = 50
MAX_PAGE = 500


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a listing: ``items`` from ``offset`` on, ``total`` in all."""

    items: list[T]
    total: int
    offset: int
    limit: int

    @property
    def next_offset(self) -> int | None:
        end = self.offset + len(self.items)
        return end if end < self.total else None


def page_bounds(offset: Any, limit: Any) -> tuple[int, int]:
    """Offset and limit from untrusted input, clamped (bad values: the defaults)."""
    try:
        start = max(0, int(offset))
    except (TypeError, ValueError):
        start = 0
    try:
        size = min(MAX_PAGE, max(1, int(limit)))
    except (TypeError, ValueError):
        size = DEFAULT_PAGE
    return start, size


def page_query(query: Select[T], offset: int, limit: int) -> Page[T]:
    total = db.session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    items = list(db.session.scalars(query.offset(offset).limit(limit)))
    return Page(items=items, total=int(total or 0), offset=offset, limit=limit)


def page_of(items: Sequence[T], offset: int = 0, limit: int = MAX_PAGE) -> Page[T]:
    """A page of a short list that is read whole (a user's devices, the keys)."""
    return Page(
        items=list(items[offset : offset + limit]), total=len(items), offset=offset, limit=limit
    )


def iso(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None
