"""Dashboard: import customers into a campaign from a CSV file, previewed before it counts.

The file goes through the CSV reader and the enrollment service of
``POST /campaigns/{id}/customers/csv`` (dialer.customers_csv.parse_customers,
dialer.services.enrollment.enroll). The preview runs the whole import in a
transaction that is then rolled back, so every per-row error (the database's
repeats included) shows before anything is written; the file rides along in the
form to the commit. Rejected rows download as the CLI writes them
(dialer.customers_csv.write_rejected_rows).

A dashboard upload is bounded by the API's body limit (dialer.api.guards, 1 MiB);
bigger files go through the API or ``dialer customers import``.
"""

from __future__ import annotations

import csv
import io
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Form, Request, Response, UploadFile
from starlette.concurrency import run_in_threadpool

from dialer.api.context import context_of
from dialer.api.ui.session import UI_PATH_PREFIX
from dialer.api.ui.web import UiRoute, log, need, parse_id, redirect, render, ui_principal
from dialer.customers_csv import parse_customers, write_rejected_rows
from dialer.services.api_keys import Principal
from dialer.services.campaign_listing import get_campaign
from dialer.services.enrollment import enroll
from dialer.services.imports import ImportRejected, ImportReport

router = APIRouter(prefix=UI_PATH_PREFIX, route_class=UiRoute, include_in_schema=False)
SignedIn = Annotated[Principal, Depends(ui_principal)]
# Under the API's 1 MiB body limit, with room for the form around the file.
MAX_UPLOAD_BYTES: Final = 900 * 1024
REGION_PATTERN: Final = r"^([A-Za-z]{2})?$"


class _Preview(Exception):
    """Raised inside the preview's transaction so it rolls back, carrying the report."""

    def __init__(self, report: ImportReport) -> None:
        self.report = report


@dataclass(frozen=True)
class _Upload:
    campaign_id: uuid.UUID
    text: str
    region: str | None


@router.get("/campaigns/{campaign_id}/import")
def import_page(request: Request, campaign_id: str, principal: SignedIn) -> Response:
    target = _writable(request, principal, campaign_id)
    return render(request, "import.html", **_page_values(request, principal, target))


@router.post("/campaigns/{campaign_id}/import/preview")
async def import_preview(
    request: Request,
    campaign_id: str,
    principal: SignedIn,
    file: UploadFile,
    default_region: Annotated[str, Form(pattern=REGION_PATTERN)] = "",
) -> Response:
    target = _writable(request, principal, campaign_id)
    raw = await file.read(MAX_UPLOAD_BYTES + 1)
    problem = _unreadable(raw)
    if problem:
        values = _page_values(request, principal, target)
        return render(request, "import.html", 422, **values, error=problem)
    upload = _Upload(target, raw.decode("utf-8-sig"), default_region.upper() or None)
    return await run_in_threadpool(_show_preview, request, principal, upload)


@router.post("/campaigns/{campaign_id}/import/commit")
def import_commit(
    request: Request,
    campaign_id: str,
    principal: SignedIn,
    csv_text: Annotated[str, Form(max_length=MAX_UPLOAD_BYTES)],
    default_region: Annotated[str, Form(pattern=REGION_PATTERN)] = "",
    partial: Annotated[bool, Form()] = False,
) -> Response:
    """Import for real: all or nothing, or (partial) the good rows only, as the API does."""
    target = _writable(request, principal, campaign_id)
    upload = _Upload(target, _from_form(csv_text), default_region.upper() or None)
    try:
        report = _run(request, principal, upload, partial=partial, keep=True)
    except ImportRejected as exc:  # the file changed under the preview: show it again
        return _preview_page(request, principal, upload, exc.report, 422)
    except (ValueError, csv.Error) as exc:
        return _preview_error(request, principal, target, str(exc))
    log.info(
        "ui_customers_imported",
        campaign_id=str(target),
        enrolled=report.enrolled,
        rejected=report.rejected_count,
    )
    message = (
        f"Imported: {report.enrolled} enrolled ({report.customers_created} new customers, "
        f"{report.customers_updated} updated), {report.already_enrolled} already enrolled, "
        f"{report.rejected_count} row(s) skipped."
    )
    return redirect(request, f"{UI_PATH_PREFIX}/campaigns/{target}", flash=message)


@router.post("/campaigns/{campaign_id}/import/rejects")
def import_rejects(
    request: Request,
    campaign_id: str,
    principal: SignedIn,
    csv_text: Annotated[str, Form(max_length=MAX_UPLOAD_BYTES)],
    default_region: Annotated[str, Form(pattern=REGION_PATTERN)] = "",
) -> Response:
    """The rejected rows of the file (as previewed) as a CSV download."""
    target = _writable(request, principal, campaign_id)
    upload = _Upload(target, _from_form(csv_text), default_region.upper() or None)
    try:
        report = _run(request, principal, upload, partial=True, keep=False)
    except (ValueError, csv.Error) as exc:
        return _preview_error(request, principal, target, str(exc))
    out = io.StringIO()
    write_rejected_rows(out, report.problems)
    report.problems.close()
    headers = {"Content-Disposition": f'attachment; filename="rejected-{target}.csv"'}
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8", headers=headers)


def _writable(request: Request, principal: Principal, campaign_id: str) -> uuid.UUID:
    """The API's rule for enrolling: campaigns:write and customers:write, own campaign."""
    need(principal, "campaigns:write")
    need(principal, "customers:write")
    target = parse_id(campaign_id, "campaign")
    with context_of(request).uow() as session:
        get_campaign(session, principal.account_id, target)
    return target


def _from_form(csv_text: str) -> str:
    """The file as the preview's form carried it (a browser may add a leading newline)."""
    return csv_text.lstrip("\r\n")


def _unreadable(raw: bytes) -> str | None:
    if len(raw) > MAX_UPLOAD_BYTES:
        return (
            f"The file is larger than {MAX_UPLOAD_BYTES // 1024} KiB: import it with the API "
            "(POST /campaigns/{id}/customers/csv) or `dialer customers import`."
        )
    if not raw.strip():
        return "The file is empty."
    try:
        raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return "The CSV file is not UTF-8 text."
    return None


def _run(
    request: Request, principal: Principal, upload: _Upload, *, partial: bool, keep: bool
) -> ImportReport:
    """The import of ``upload``; committed when ``keep``, else rolled back (a preview)."""
    ctx = context_of(request)
    now: datetime = ctx.now()
    lines = io.StringIO(upload.text, newline="")
    rows = parse_customers(lines, default_region=upload.region, dedupe=False)
    try:
        with ctx.uow() as session:
            report = enroll(
                session, principal.account_id, upload.campaign_id, rows, partial=partial, now=now
            )
            if not keep:
                raise _Preview(report)
    except _Preview as preview:
        return preview.report
    return report


def _show_preview(request: Request, principal: Principal, upload: _Upload) -> Response:
    try:
        report = _run(request, principal, upload, partial=True, keep=False)
    except (ValueError, csv.Error) as exc:
        return _preview_error(request, principal, upload.campaign_id, str(exc))
    return _preview_page(request, principal, upload, report, 200)


def _preview_page(
    request: Request, principal: Principal, upload: _Upload, report: ImportReport, status: int
) -> Response:
    values = _page_values(request, principal, upload.campaign_id)
    values.update(
        report=report,
        rejected=report.rejected,
        csv_text=upload.text,
        default_region=upload.region or "",
    )
    response = render(request, "import_preview.html", status, **values)
    report.problems.close()
    return response


def _preview_error(
    request: Request, principal: Principal, campaign_id: uuid.UUID, message: str
) -> Response:
    values = _page_values(request, principal, campaign_id)
    return render(
        request, "import.html", 422, **values, error=f"The file cannot be read: {message}"
    )


def _page_values(request: Request, principal: Principal, campaign_id: uuid.UUID) -> dict[str, Any]:
    with context_of(request).uow() as session:
        campaign = get_campaign(session, principal.account_id, campaign_id)
        return {"campaign_id": campaign.id, "campaign_name": campaign.name}
