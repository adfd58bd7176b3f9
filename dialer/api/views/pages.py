"""Seed 003's list envelope: ``{data, meta{request_id, ts}, pagination}``.

Pagination is limit/offset: limit 1..100 (default 50), offset 0..10^9. An offset past
the end is an empty page, not an error (the total says where the end is).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Final, Generic, TypeVar

from fastapi import Depends, Query, Request
from pydantic import BaseModel

from dialer.api.errors import request_id_of

DEFAULT_PAGE_LIMIT: Final = 50
MAX_PAGE_LIMIT: Final = 100
MAX_PAGE_OFFSET: Final = 1_000_000_000  # beyond any real list, inside PostgreSQL's bigint

ItemT = TypeVar("ItemT", bound=BaseModel)


class MetaOut(BaseModel):
    request_id: str
    ts: datetime


class PaginationOut(BaseModel):
    total: int
    limit: int
    offset: int
    has_more: bool


class Page(BaseModel, Generic[ItemT]):
    data: list[ItemT]
    meta: MetaOut
    pagination: PaginationOut


@dataclass(frozen=True)
class PageWindow:
    """Which slice of a list the caller asked for."""

    limit: int
    offset: int


def _page_window(
    limit: Annotated[
        int, Query(ge=1, le=MAX_PAGE_LIMIT, description="Maximum results per page.")
    ] = DEFAULT_PAGE_LIMIT,
    offset: Annotated[
        int, Query(ge=0, le=MAX_PAGE_OFFSET, description="Number of results to skip.")
    ] = 0,
) -> PageWindow:
    return PageWindow(limit=limit, offset=offset)


PageQuery = Annotated[PageWindow, Depends(_page_window)]


def page_of(
    request: Request, now: datetime, items: list[ItemT], total: int, window: PageWindow
) -> Page[ItemT]:
    pagination = PaginationOut(
        total=total,
        limit=window.limit,
        offset=window.offset,
        has_more=window.offset + len(items) < total,
    )
    meta = MetaOut(request_id=request_id_of(request), ts=now)
    return Page[ItemT](data=items, meta=meta, pagination=pagination)
