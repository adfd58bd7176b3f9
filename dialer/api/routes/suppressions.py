"""Control API: the account's do-not-contact list (issue 16).

A listed number is never called or messaged in any campaign of the account. Numbers
are added one by one or up to 1000 per JSON request, or as a file streamed as the raw
body of ``POST /suppressions/csv`` (one number per line, or a CSV whose first column
is the number; a header line is skipped); each bad line is reported with its line
number, the rest load. Reading needs ``customers:read``, changing ``customers:write``:
the list is about the account's customers. Listing is keyset-paged by number
(``after``), since a national list holds millions of rows and a total would cost a
full count.
"""

from __future__ import annotations

import csv
from collections.abc import AsyncIterator
from datetime import date
from typing import Annotated, Final

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from dialer.api.auth import require
from dialer.api.context import ApiContext, context_of
from dialer.api.errors import ApiError, request_id_of, validation_error
from dialer.api.uploads import UploadTooLarge, body_lines
from dialer.api.views.pages import MetaOut
from dialer.logging import get_logger
from dialer.schemas import SuppressionIn
from dialer.services.api_keys import Principal
from dialer.services.suppressions import (
    SOURCE_PATTERN,
    SuppressionEntry,
    add_suppressions,
    get_suppression,
    list_suppressions,
    load_numbers,
    remove_suppression,
)
from models import Suppression

MAX_JSON_NUMBERS: Final = 1000
MAX_FILE_BYTES: Final = 64 * 1024 * 1024  # ~4M numbers of a plain list
MAX_REJECTS_LISTED: Final = 1000

log = get_logger("dialer.api.suppressions")
router = APIRouter(tags=["suppressions"])

Reader = Annotated[Principal, Depends(require("customers:read"))]
Writer = Annotated[Principal, Depends(require("customers:write"))]
E164Path = Annotated[str, Path(pattern=r"^\+[1-9][0-9]{6,14}$", description="E.164 number")]
SourceQuery = Annotated[
    str, Query(pattern=SOURCE_PATTERN.pattern, description="Name of the list, e.g. national_dnc.")
]
_FILE_BODY: Final = {
    "requestBody": {
        "required": True,
        "content": {"text/csv": {"schema": {"type": "string", "format": "binary"}}},
    }
}


class SuppressionOut(BaseModel):
    phone: str
    source: str
    reason: str | None
    listed_on: date | None


class SuppressionPageOut(BaseModel):
    data: list[SuppressionOut]
    meta: MetaOut
    next_after: str | None = Field(
        description="Pass as `after` for the next page; null at the end."
    )


class AddedOut(BaseModel):
    added: int
    already_listed: int


class RejectedLineOut(BaseModel):
    line: int
    reason: str


class LoadOut(BaseModel):
    read: int
    added: int
    already_listed: int = Field(description="Listed before, or repeated in the file.")
    rejected: int
    rejected_lines: list[RejectedLineOut] = Field(description="The first 1000 bad lines.")


def _out(row: Suppression) -> SuppressionOut:
    return SuppressionOut(
        phone=row.phone, source=row.source, reason=row.reason, listed_on=row.listed_on
    )


@router.get("/suppressions", response_model=SuppressionPageOut)
def list_(
    request: Request,
    principal: Reader,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    after: Annotated[str | None, Query(max_length=50, pattern=r"^\+[0-9]*$")] = None,
    source: Annotated[str | None, Query(pattern=SOURCE_PATTERN.pattern)] = None,
) -> SuppressionPageOut:
    """The account's listed numbers in number order."""
    ctx = context_of(request)
    with ctx.uow() as session:
        rows = list_suppressions(
            session, principal.account_id, limit=limit, after=after, source=source
        )
        data = [_out(row) for row in rows]
    return SuppressionPageOut(
        data=data,
        meta=MetaOut(request_id=request_id_of(request), ts=ctx.now()),
        next_after=data[-1].phone if len(data) == limit else None,
    )


@router.get("/suppressions/{phone}", response_model=SuppressionOut)
def get(request: Request, phone: E164Path, principal: Reader) -> SuppressionOut:
    with context_of(request).uow() as session:
        row = get_suppression(session, principal.account_id, phone)
        if row is None:
            raise ApiError(404, "not_found", f"{phone} is not on the list")
        return _out(row)


@router.post("/suppressions", status_code=201, response_model=AddedOut)
def add(
    request: Request,
    numbers: Annotated[list[SuppressionIn], Body(min_length=1, max_length=MAX_JSON_NUMBERS)],
    principal: Writer,
) -> AddedOut:
    """List up to 1000 numbers; a number already listed keeps its first source."""
    entries = [SuppressionEntry(n.phone, n.source, n.reason, n.listed_on) for n in numbers]
    with context_of(request).uow() as session:
        added = add_suppressions(session, principal.account_id, entries)
    log.info("suppressions_added", added=added, given=len(entries))
    return AddedOut(added=added, already_listed=len(entries) - added)


@router.delete("/suppressions/{phone}", status_code=204)
def remove(request: Request, phone: E164Path, principal: Writer) -> Response:
    with context_of(request).uow() as session:
        if not remove_suppression(session, principal.account_id, phone):
            raise ApiError(404, "not_found", f"{phone} is not on the list")
    log.info("suppression_removed")
    return Response(status_code=204)


@router.post("/suppressions/csv", response_model=LoadOut, openapi_extra=_FILE_BODY)
async def load_file(
    request: Request,
    principal: Writer,
    source: SourceQuery,
    listed_on: date | None = None,
    default_region: Annotated[
        str | None,
        Query(min_length=2, max_length=2, description="Region of numbers without +, e.g. US."),
    ] = None,
) -> LoadOut:
    """Load a list sent as the raw body: one number per line (or first CSV column).

    At most 64 MiB (413 beyond). Bad lines are counted and the first 1000 listed; the
    good ones load. The list keeps the first source of a number listed twice.
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_FILE_BYTES:
        raise _too_large()
    load = _FileLoad(context_of(request), principal, source, listed_on, default_region)
    try:
        return await run_in_threadpool(load.run, request.stream())
    except UploadTooLarge:
        raise _too_large() from None
    except UnicodeDecodeError:
        raise validation_error("body", "the file is not UTF-8 text") from None
    except csv.Error as exc:
        raise validation_error("body", str(exc)) from None


class _FileLoad:
    def __init__(
        self,
        ctx: ApiContext,
        principal: Principal,
        source: str,
        listed_on: date | None,
        default_region: str | None,
    ) -> None:
        self._ctx = ctx
        self._account_id = principal.account_id
        self._source = source
        self._listed_on = listed_on
        self._region = default_region.upper() if default_region else None
        self.rejected: list[RejectedLineOut] = []

    def _reject(self, line: int, _raw: str, reason: str) -> None:
        if len(self.rejected) < MAX_REJECTS_LISTED:
            self.rejected.append(RejectedLineOut(line=line, reason=reason))

    def run(self, chunks: AsyncIterator[bytes]) -> LoadOut:
        lines = body_lines(chunks, MAX_FILE_BYTES)
        with self._ctx.uow() as session:
            report = load_numbers(
                session,
                self._account_id,
                lines,
                source=self._source,
                listed_on=self._listed_on,
                default_region=self._region,
                reject=self._reject,
            )
        log.info("suppressions_loaded", source=self._source, **report.as_dict())
        return LoadOut(**report.as_dict(), rejected_lines=self.rejected)


def _too_large() -> ApiError:
    return ApiError(413, "payload_too_large", f"the file is larger than {MAX_FILE_BYTES} bytes")
