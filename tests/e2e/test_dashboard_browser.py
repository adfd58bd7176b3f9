"""The dashboard in a real browser: Chromium (the system's, /usr/bin/chromium) driven by
Playwright against the real app served by uvicorn on a loopback port.

A person signs in with a key, sees the campaign and its counters refresh by
themselves, pauses and resumes it, filters the calls, and imports a CSV with a bad
row and sees that row's error. Without Chromium the tests skip, except under CI
(CI=true), where a missing browser is a failure (.ci/run installs it).

Screenshots of the main pages go to DIALER_SCREENSHOTS_DIR when it is set
(``make screenshots`` sets docs/screenshots), else to the test's temporary folder.
"""

from __future__ import annotations

import io
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import pytest

from dialer.customers_csv import parse_customers
from dialer.services.imports import import_customers
from models import Campaign
from models.session import transaction
from tests.conftest import in_ci
from tests.integration.api_support import Api
from tests.integration.results_support import campaign_with_results

CHROMIUM: Final = Path(os.environ.get("DIALER_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS: Final = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP: Final = {"width": 1280, "height": 900}
PHONE: Final = {"width": 390, "height": 844}
WAIT_MS: Final = 15_000
# More contacts, so the timeline has several zones and a skipped contact to show.
MORE_CUSTOMERS_CSV: Final = (
    "customer_id,name,phone\nx1,Nina York,+12125550123\nx2,Lou Angeles,+13105550123\nx3,No Phone,\n"
)
BAD_ROW_CSV: Final = (
    "customer_id,name,phone,email\n"
    "b1,Bianca Uno,+390612349101,uno@example.com\n"
    "b2,Bruno Due,+390612349102,not-an-email\n"
)


def _missing_browser(reason: str) -> None:
    if in_ci():
        pytest.fail(f"{reason}: CI must run the browser tests (.ci/run installs chromium)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    if not CHROMIUM.exists():
        _missing_browser(f"{CHROMIUM} not found")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing_browser("the playwright package is not installed")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("DIALER_SCREENSHOTS_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def signed_in(api: Api, chromium: Any) -> Iterator[tuple[Any, uuid.UUID, str]]:
    """A page signed in through the form, on the campaigns list; the campaign; its key."""
    account_name = f"acct-{uuid.uuid4().hex[:8]}"
    campaign_id = campaign_with_results(api.database_url, account_name, "Winter renewals")
    with transaction(api.database_url) as session:
        campaign = session.get_one(Campaign, campaign_id)
        rows = parse_customers(io.StringIO(MORE_CUSTOMERS_CSV))
        import_customers(session, campaign, rows, partial=False)
    secret = api.key(api.account(account_name))
    context = chromium.new_context(viewport=DESKTOP, base_url=api.base_url)
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.goto("/ui/campaigns")
    assert "/ui/login" in page.url  # not signed in: sent to the sign-in page
    page.fill("#api_key", secret)
    page.click("button[type=submit]")
    page.wait_for_url("**/ui/campaigns")
    yield page, campaign_id, secret
    context.close()


def test_sign_in_see_the_campaign_pause_and_resume_it(
    api: Api, signed_in: tuple[Any, uuid.UUID, str], shots: Path
) -> None:
    page, campaign_id, secret = signed_in
    row = page.locator(f'tr[data-campaign-id="{campaign_id}"]')
    assert "Winter renewals" in row.inner_text()
    assert "$5.40" in row.inner_text()
    # Live: the API starts the campaign; the list shows it without a reload.
    assert api.client(secret).post(f"/campaigns/{campaign_id}/start").status_code == 200
    page.wait_for_selector(f'tr[data-campaign-id="{campaign_id}"] [data-status="running"]')
    page.screenshot(path=str(shots / "campaigns.png"), full_page=True)

    row.locator("a").click()
    page.wait_for_selector("#campaign-status")
    assert page.inner_text("#campaign-status") == "running"
    assert page.locator("svg.timeline").count() == 1
    assert "America/New_York" in page.inner_text("#plan-h + p + .chart-wrap")
    assert "missing_contact" in page.inner_text("#skips")
    page.screenshot(path=str(shots / "campaign.png"), full_page=True)

    page.click("#btn-pause")
    page.wait_for_selector('#campaign-status[data-status="paused"]')
    assert "now paused" in page.inner_text(".flash")
    page.select_option("#segment", "not_answered")
    page.click("#btn-resume")
    page.wait_for_selector('#campaign-status[data-status="running"]')
    assert "Resumed (not_answered)" in page.inner_text(".flash")

    page.set_viewport_size(PHONE)
    page.screenshot(path=str(shots / "campaign-phone.png"), full_page=True)
    # Usable on a phone: nothing wider than the screen but the scrollable tables.
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"]


def test_a_refused_transition_shows_the_seed_002_message(
    signed_in: tuple[Any, uuid.UUID, str],
) -> None:
    page, campaign_id, _ = signed_in
    page.goto(f"/ui/campaigns/{campaign_id}")
    page.click("#btn-complete")
    page.wait_for_selector('#campaign-status[data-status="done"]')
    page.click("#btn-start")
    page.wait_for_selector("#error")
    assert "done" in page.inner_text("#error")


def test_filter_the_calls_and_open_one(signed_in: tuple[Any, uuid.UUID, str], shots: Path) -> None:
    page, campaign_id, _ = signed_in
    page.goto("/ui/calls")
    assert page.locator("#calls tbody tr[data-attempt-id]").count() == 8
    page.select_option("#outcome", ["answered"])
    page.select_option("#campaign_id", str(campaign_id))
    page.click("#apply-filters")
    page.wait_for_url("**outcome=answered**")
    assert page.locator("#calls tbody tr[data-attempt-id]").count() == 2
    page.screenshot(path=str(shots / "calls.png"), full_page=True)

    page.fill("#q", "Name c4")
    page.click("#apply-filters")
    page.wait_for_url("**q=Name+c4**")
    assert page.locator("#calls tbody tr[data-attempt-id]").count() == 1
    page.locator("#calls tbody tr[data-attempt-id] a").first.click()
    page.wait_for_selector("#history")
    assert page.inner_text("#call-outcome") == "answered"
    assert "$3.00" in page.inner_text("#call-cost")
    page.screenshot(path=str(shots / "call.png"), full_page=True)


def test_import_a_csv_with_a_bad_row_and_see_its_error(
    signed_in: tuple[Any, uuid.UUID, str], shots: Path
) -> None:
    page, campaign_id, _ = signed_in
    page.goto(f"/ui/campaigns/{campaign_id}/import")
    page.set_input_files(
        "#file",
        {"name": "customers.csv", "mimeType": "text/csv", "buffer": BAD_ROW_CSV.encode()},
    )
    page.click("#preview")
    page.wait_for_selector("#row-errors")
    errors = page.inner_text("#row-errors")
    assert "3" in errors
    assert "email" in errors
    page.screenshot(path=str(shots / "import.png"), full_page=True)

    page.click("#commit")
    page.wait_for_selector(".flash")
    assert "Imported: 1 enrolled" in page.inner_text(".flash")
