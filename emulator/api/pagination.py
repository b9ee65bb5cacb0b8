"""UbiOps' paginated lists (`…Paginated`): a page of `results`, and the URLs of the pages beside it
(`next`, `previous`), each with a `cursor` (here, how many results come before the page)."""

from __future__ import annotations

import re
from typing import Generic, TypeVar

from fastapi import Request
from pydantic import BaseModel

from emulator.api.errors import ApiError

Item = TypeVar("Item")


class Page(BaseModel, Generic[Item]):
    """A page of a paginated list (`InstanceListPaginated`, …): `next` and `previous` are the URLs of
    the pages beside it, or null."""

    next: str | None = None
    previous: str | None = None
    results: list[Item]


def paginate(items: list[Item], request: Request, cursor: str | None, limit: int) -> Page[Item]:
    """The page of `items` that `cursor` (None: the first) and `limit` select."""
    if cursor is None:
        offset = 0
    elif re.fullmatch(r"[0-9]{1,18}", cursor):  # no list comes near 10^18 items (and `int` refuses past 4300 digits)
        offset = int(cursor)
    else:
        raise ApiError(400, f"cursor: {cursor!r} is not a cursor; use the next or previous URL of a page")
    end = offset + limit
    return Page[Item](
        results=items[offset:end],
        next=str(request.url.include_query_params(cursor=end)) if end < len(items) else None,
        previous=str(request.url.include_query_params(cursor=max(0, offset - limit))) if offset > 0 else None,
    )
