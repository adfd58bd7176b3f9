"""Control API: customers, and enrolling them in a campaign (JSON or a streamed CSV).

Every route works inside the key's account: another account's customer or campaign
answers 404, never 403. Enrolling needs both campaigns:write and customers:write
(it changes a campaign's audience and creates or updates customers).

Enrollment is all-or-nothing by default. A JSON list is validated whole before
anything is written (a bad item is a 422 naming ``<index>.<field>``), and numbers
must be E.164. A CSV file is read while it arrives; with ``partial=false`` one bad
row imports nothing (422 ``import_rejected``, every bad row in ``details`` with its
line, as a string since details hold strings); with ``partial=true`` the good rows
are imported and the bad ones listed in the answer's ``rejected``. A CSV row whose
only fault is its phone number is not a bad row: it is enrolled as failed
(invalid_number), as the CLI import does, so it can be fixed and resumed.
"""

from __future__ import annotations

import csv
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Final

from fastapi import APIRouter, Body, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from dialer.api.auth import require
from dialer.api.context import ApiContext, context_of
from dialer.api.errors import ApiError, validation_error
from dialer.api.uploads import UploadTooLarge, body_lines
from dialer.api.views.customers import CustomerOut, ImportReportOut, customer_out, report_out
from dialer.api.views.pages import Page, PageQuery, page_of
from dialer.customers_csv import parse_customers
from dialer.logging import get_logger
from dialer.schemas import CustomerIn
from dialer.services.api_keys import Principal
from dialer.services.customers import create_customer, find_customer, list_customers
from dialer.services.enrollment import enroll, rows_of
from dialer.services.imports import ImportRejected, ImportReport

MAX_JSON_CUSTOMERS: Final = 1000
# ~200,000 rows of a typical file: one request is one transaction, so keep it bounded.
MAX_CSV_UPLOAD_BYTES: Final = 20 * 1024 * 1024
MAX_REJECTS_DETAILED: Final = 1000  # more bad rows than this: the count says the rest

log = get_logger("dialer.api.customers")
router = APIRouter(tags=["customers"])

Reader = Annotated[Principal, Depends(require("customers:read"))]
Writer = Annotated[Principal, Depends(require("customers:write"))]
CampaignWriter = Annotated[Principal, Depends(require("campaigns:write"))]
PartialQuery = Annotated[
    bool, Query(description="Import the good rows even when some are bad (they are listed).")
]
RegionQuery = Annotated[
    str | None,
    Query(min_length=2, max_length=2, description="Region of numbers without +, e.g. US."),
]
_CSV_BODY: Final = {
    "requestBody": {
        "required": True,
        "content": {"text/csv": {"schema": {"type": "string", "format": "binary"}}},
    }
}


@router.post("/customers", status_code=201, response_model=CustomerOut)
def create(request: Request, customer: CustomerIn, principal: Writer) -> CustomerOut:
    """Create a customer (E.164 phone). 409 when its customer_id, or else its phone, is taken."""
    with context_of(request).uow() as session:
        return customer_out(create_customer(session, principal.account_id, customer))


@router.get("/customers", response_model=Page[CustomerOut])
def list_(
    request: Request,
    principal: Reader,
    window: PageQuery,
    q: Annotated[
        str | None,
        Query(
            max_length=255,
            pattern=r"^[^\x00]*$",  # PostgreSQL text cannot hold NUL
            description="Part of a name, surname, phone, customer_id, email.",
        ),
    ] = None,
) -> Page[CustomerOut]:
    """The account's customers, newest first."""
    ctx = context_of(request)
    now = ctx.now()
    with ctx.uow() as session:
        page = list_customers(
            session, principal.account_id, q=q, limit=window.limit, offset=window.offset
        )
        items = [customer_out(customer) for customer in page.customers]
    return page_of(request, now, items, page.total, window)


@router.get("/customers/{customer_id}", response_model=CustomerOut)
def get(request: Request, customer_id: uuid.UUID, principal: Reader) -> CustomerOut:
    with context_of(request).uow() as session:
        return customer_out(find_customer(session, principal.account_id, customer_id))


@router.post("/campaigns/{campaign_id}/customers", response_model=ImportReportOut)
def enroll_json(
    request: Request,
    campaign_id: uuid.UUID,
    customers: Annotated[list[CustomerIn], Body(min_length=1, max_length=MAX_JSON_CUSTOMERS)],
    principal: CampaignWriter,
    _customers_writer: Writer,
) -> ImportReportOut:
    """Enrol up to 1000 customers, all or none: existing ones (same customer_id, else
    same phone) are updated, new ones created. A customer listed twice is a 422."""
    rows = rows_of(customers)
    ctx = context_of(request)
    now = ctx.now()
    with ctx.uow() as session:
        report = enroll(session, principal.account_id, campaign_id, rows, partial=False, now=now)
        _log_report(campaign_id, "json", report)
        return report_out(report)


@router.post(
    "/campaigns/{campaign_id}/customers/csv",
    response_model=ImportReportOut,
    openapi_extra=_CSV_BODY,
)
async def enroll_csv(
    request: Request,
    campaign_id: uuid.UUID,
    principal: CampaignWriter,
    _customers_writer: Writer,
    partial: PartialQuery = False,
    default_region: RegionQuery = None,
) -> ImportReportOut:
    """Enrol the customers of a CSV file sent as the raw body (Content-Type: text/csv).

    Line 1 names the columns (customer_id, name, surname, email, phone, timezone; any
    other column is a template field). At most 20 MiB (413 beyond). Every bad row is
    reported with its line number, field and reason.
    """
    _refuse_unreadable_upload(request)
    ctx = context_of(request)
    upload = _CsvUpload(ctx, principal, campaign_id, partial, default_region, ctx.now())
    try:
        return await run_in_threadpool(upload.run, request.stream())
    except UploadTooLarge as exc:
        raise _too_large(exc.max_bytes) from None
    except UnicodeDecodeError:
        raise validation_error("body", "the CSV file is not UTF-8 text") from None
    except (ValueError, csv.Error) as exc:
        raise validation_error("body", str(exc)) from None
    except ImportRejected as exc:
        raise _rejected(exc) from None


class _CsvUpload:
    """One CSV enrollment, run in a worker thread while the body is still arriving."""

    def __init__(
        self,
        ctx: ApiContext,
        principal: Principal,
        campaign_id: uuid.UUID,
        partial: bool,
        default_region: str | None,
        now: datetime,
    ) -> None:
        self._ctx = ctx
        self._account_id = principal.account_id
        self._campaign_id = campaign_id
        self._partial = partial
        self._default_region = default_region
        self._now = now

    def run(self, chunks: AsyncIterator[bytes]) -> ImportReportOut:
        lines = body_lines(chunks, MAX_CSV_UPLOAD_BYTES)
        rows = parse_customers(lines, default_region=self._default_region, dedupe=False)
        with self._ctx.uow() as session:
            report = enroll(
                session,
                self._account_id,
                self._campaign_id,
                rows,
                partial=self._partial,
                now=self._now,
            )
            _log_report(self._campaign_id, "csv", report)
            return report_out(report)


def _log_report(campaign_id: uuid.UUID, source: str, report: ImportReport) -> None:
    log.info(
        "customers_enrolled",
        campaign_id=str(campaign_id),
        source=source,
        rows=report.rows_read,
        enrolled=report.enrolled,
        rejected=report.rejected_count,
    )


def _refuse_unreadable_upload(request: Request) -> None:
    """Refuse before reading: a declared size over the limit, or a multipart form."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_CSV_UPLOAD_BYTES:
        raise _too_large(MAX_CSV_UPLOAD_BYTES)
    if request.headers.get("content-type", "").startswith("multipart/"):
        raise ApiError(
            415,
            "unsupported_media_type",
            "send the CSV file itself as the request body (Content-Type: text/csv)",
        )


def _too_large(max_bytes: int) -> ApiError:
    return ApiError(413, "payload_too_large", f"the CSV file is larger than {max_bytes} bytes")


def _rejected(exc: ImportRejected) -> ApiError:
    """Nothing was imported: every bad row, with its line (as text: details are strings)."""
    problems = exc.report.rejected
    details = [
        {"line": str(p.line), "field": p.field, "reason": p.reason}
        for p in problems[:MAX_REJECTS_DETAILED]
    ]
    message = (
        f"{exc.report.rejected_count} bad row(s); nothing was imported "
        "(send partial=true to import the good rows)"
    )
    return ApiError(422, "import_rejected", message, details=details)
