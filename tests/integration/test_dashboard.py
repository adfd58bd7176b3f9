"""The dashboard (/ui): sign-in, sessions, CSRF, account isolation and the campaign pages.

Against the real app on the test database over loopback HTTP (``api``), as a browser
would talk to it: cookies kept, forms posted with their CSRF token.
"""

from __future__ import annotations

import uuid
from urllib.parse import unquote

import httpx
import pytest
from sqlalchemy import select

from dialer.api.ui.session import SESSION_COOKIE
from models import ApiKey, CallAttempt, Campaign, Enrollment
from models.session import transaction
from tests.integration.api_support import Api
from tests.integration.dashboard_support import browser, csrf_of, post_form, sign_in
from tests.integration.results_support import campaign_with_results


def account_with_campaign(api: Api, name: str = "Results") -> tuple[str, uuid.UUID]:
    """A new account's key secret and its campaign with recorded results."""
    account_name = f"acct-{uuid.uuid4().hex[:8]}"
    campaign_id = campaign_with_results(api.database_url, account_name, name)
    return api.key(api.account(account_name)), campaign_id


def status_of(api: Api, campaign_id: uuid.UUID) -> str:
    with transaction(api.database_url) as session:
        return str(session.scalar(select(Campaign.status).where(Campaign.id == campaign_id)))


# ------------------------------------------------------------------------------- sign-in


@pytest.mark.parametrize("path", ["/ui/campaigns", "/ui/calls", "/ui/campaigns/x"])
def test_pages_need_a_session_and_send_to_the_sign_in_page(api: Api, path: str) -> None:
    answer = browser(api).get(path)
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/ui/login?next={path.replace('/', '%2F')}"


def test_a_background_fetch_without_a_session_is_401_not_a_redirect(api: Api) -> None:
    answer = browser(api).get("/ui/campaigns/rows", headers={"X-Dashboard-Fetch": "1"})
    assert answer.status_code == 401


def test_a_wrong_key_is_refused_and_sets_no_session(api: Api) -> None:
    client = browser(api)
    form = client.get("/ui/login")
    answer = client.post(
        "/ui/login", data={"api_key": "sk_00000000_nope", "csrf_token": csrf_of(form)}
    )
    assert answer.status_code == 401
    assert "Invalid API key." in answer.text
    assert SESSION_COOKIE not in client.cookies
    assert client.get("/ui/campaigns").status_code == 303


def test_sign_in_sets_a_signed_http_only_strict_cookie_naming_the_key_not_its_secret(
    api: Api,
) -> None:
    secret, _ = account_with_campaign(api)
    client = browser(api)
    form = client.get("/ui/login")
    answer = client.post(
        "/ui/login",
        data={"api_key": secret, "csrf_token": csrf_of(form), "next": "/ui/calls"},
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/ui/calls"
    header = next(h for h in answer.headers.get_list("set-cookie") if h.startswith(SESSION_COOKIE))
    lowered = header.lower()
    assert "httponly" in lowered
    assert "samesite=strict" in lowered
    assert "max-age=" in lowered
    assert "secure" not in lowered  # served over http here: Secure only under https
    value = unquote(client.cookies[SESSION_COOKIE])
    assert secret not in value
    with transaction(api.database_url) as session:
        key_id = session.scalar(select(ApiKey.id).where(ApiKey.prefix == secret[:11]))
    assert value.startswith(f"{key_id}.")
    assert client.get("/ui/campaigns").status_code == 200


def test_sign_in_never_redirects_off_the_dashboard(api: Api) -> None:
    secret, _ = account_with_campaign(api)
    client = browser(api)
    form = client.get("/ui/login")
    answer = client.post(
        "/ui/login",
        data={"api_key": secret, "csrf_token": csrf_of(form), "next": "//evil.example/ui/"},
    )
    assert answer.headers["location"] == "/ui/campaigns"


def test_a_tampered_cookie_is_no_session(api: Api) -> None:
    secret, _ = account_with_campaign(api)
    client = sign_in(api, secret)
    _key_id, expires, nonce, signature = unquote(client.cookies[SESSION_COOKIE]).split(".")
    forged = f"{uuid.uuid4()}.{expires}.{nonce}.{signature}"
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, forged)
    assert client.get("/ui/campaigns").status_code == 303


def test_a_revoked_key_ends_its_sessions(api: Api) -> None:
    secret, _ = account_with_campaign(api)
    client = sign_in(api, secret)
    with transaction(api.database_url) as session:
        key = session.scalars(select(ApiKey).where(ApiKey.prefix == secret[:11])).one()
        key.revoked_at = key.created_at
    assert client.get("/ui/campaigns").status_code == 303


def test_sign_out_ends_the_session(api: Api) -> None:
    secret, _ = account_with_campaign(api)
    client = sign_in(api, secret)
    answer = post_form(client, "/ui/campaigns", "/ui/logout")
    assert answer.status_code == 303
    assert client.get("/ui/campaigns").status_code == 303


# ---------------------------------------------------------------------------------- CSRF


def test_a_post_without_the_csrf_token_is_403_and_changes_nothing(api: Api) -> None:
    secret, campaign_id = account_with_campaign(api)
    client = sign_in(api, secret)
    assert (
        post_form(client, "/ui/campaigns", f"/ui/campaigns/{campaign_id}/start").status_code == 303
    )
    answer = client.post(f"/ui/campaigns/{campaign_id}/pause")
    assert answer.status_code == 403
    assert "CSRF" in answer.text
    wrong = client.post(f"/ui/campaigns/{campaign_id}/pause", data={"csrf_token": "x" * 64})
    assert wrong.status_code == 403
    assert status_of(api, campaign_id) == "running"


def test_the_sign_in_form_needs_its_csrf_token_too(api: Api) -> None:
    secret, _ = account_with_campaign(api)
    answer = browser(api).post("/ui/login", data={"api_key": secret})
    assert answer.status_code == 403


def test_another_sessions_csrf_token_is_refused(api: Api) -> None:
    secret, campaign_id = account_with_campaign(api)
    mine, theirs = sign_in(api, secret), sign_in(api, secret)
    token = csrf_of(theirs.get("/ui/campaigns"))
    answer = mine.post(f"/ui/campaigns/{campaign_id}/start", data={"csrf_token": token})
    assert answer.status_code == 403


# ------------------------------------------------------------------------- the campaigns


def test_the_list_shows_the_accounts_campaigns_with_seed_003_counters(api: Api) -> None:
    secret, campaign_id = account_with_campaign(api, "Spring <b>sale</b>")
    other_secret, other_id = account_with_campaign(api, "Theirs")
    page = sign_in(api, secret).get("/ui/campaigns")
    assert page.status_code == 200
    assert f'data-campaign-id="{campaign_id}"' in page.text
    assert "Spring &lt;b&gt;sale&lt;/b&gt;" in page.text  # autoescaped
    assert "<b>sale</b>" not in page.text
    assert str(other_id) not in page.text
    assert "$5.40" in page.text  # total cost of the recorded results
    assert 'data-live-src="/ui/campaigns/rows?offset=0"' in page.text
    rows = sign_in(api, secret).get("/ui/campaigns/rows")
    assert rows.status_code == 200
    assert f'data-campaign-id="{campaign_id}"' in rows.text
    assert "<html" not in rows.text
    del other_secret


def test_pages_send_security_headers(api: Api) -> None:
    secret, _ = account_with_campaign(api)
    page = sign_in(api, secret).get("/ui/campaigns")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"


def test_another_accounts_campaign_is_404(api: Api) -> None:
    secret, _ = account_with_campaign(api)
    _, other_id = account_with_campaign(api, "Theirs")
    client = sign_in(api, secret)
    page = client.get(f"/ui/campaigns/{other_id}")
    assert page.status_code == 404
    assert f"campaign {other_id} not found" in page.text
    action = post_form(client, "/ui/campaigns", f"/ui/campaigns/{other_id}/start")
    assert action.status_code == 404
    assert status_of(api, other_id) == "draft"
    assert client.get("/ui/campaigns/not-a-uuid").status_code == 404


def test_the_campaign_page_shows_progress_outcomes_states_cost_and_the_plan(api: Api) -> None:
    secret, campaign_id = account_with_campaign(api)
    page = sign_in(api, secret).get(f"/ui/campaigns/{campaign_id}")
    assert page.status_code == 200
    text = page.text
    assert "<svg" in text
    for words in ("Contacts closed", "Goal met", "Calls placed", "Answered", "Outcome mix"):
        assert words in text
    assert "answered <strong>2</strong>" in text  # c1 and c4 answered once each
    assert "goal_met <strong>1</strong>" in text
    assert "$5.40" in text
    assert "Who is callable when" in text
    assert "Europe/Rome" in text  # the waiting contacts' zone has a lane
    live = sign_in(api, secret).get(f"/ui/campaigns/{campaign_id}/live")
    assert live.status_code == 200
    assert "Outcome mix" in live.text


def test_pause_and_resume_through_the_page_change_the_status(api: Api) -> None:
    secret, campaign_id = account_with_campaign(api)
    client = sign_in(api, secret)
    page = f"/ui/campaigns/{campaign_id}"
    started = post_form(client, page, f"{page}/start")
    assert started.status_code == 303
    assert status_of(api, campaign_id) == "running"
    assert "now running" in client.get(page).text  # the flash message
    assert post_form(client, page, f"{page}/pause").status_code == 303
    assert status_of(api, campaign_id) == "paused"
    resumed = post_form(client, page, f"{page}/resume", segment="not_answered")
    assert resumed.status_code == 303
    assert status_of(api, campaign_id) == "running"
    assert "Resumed (not_answered): 1 selected" in client.get(page).text


def test_a_refused_transition_shows_the_seed_002_error(api: Api) -> None:
    secret, campaign_id = account_with_campaign(api)
    client = sign_in(api, secret)
    page = f"/ui/campaigns/{campaign_id}"
    assert post_form(client, page, f"{page}/resume").status_code == 400  # a draft
    assert post_form(client, page, f"{page}/complete").status_code == 303
    refused = post_form(client, page, f"{page}/start")
    assert refused.status_code == 400
    api_answer = api.client(secret).post(f"/campaigns/{campaign_id}/start")
    assert api_answer.status_code == 400
    assert api_answer.json()["message"] in refused.text
    assert status_of(api, campaign_id) == "done"


def test_a_key_without_the_write_scope_cannot_press_the_buttons(api: Api) -> None:
    account_name = f"acct-{uuid.uuid4().hex[:8]}"
    campaign_id = campaign_with_results(api.database_url, account_name)
    secret = api.key(api.account(account_name), ["campaigns:read"])
    client = sign_in(api, secret)
    page = f"/ui/campaigns/{campaign_id}"
    assert client.get(page).status_code == 200
    answer = post_form(client, page, f"{page}/start")
    assert answer.status_code == 403
    assert "missing the required scope: campaigns:write" in answer.text
    assert status_of(api, campaign_id) == "draft"


# ------------------------------------------------------------------------------ the calls


def attempt_ids(api: Api, campaign_id: uuid.UUID, outcome: str) -> set[str]:
    with transaction(api.database_url) as session:
        ids = session.scalars(
            select(CallAttempt.id).where(
                CallAttempt.campaign_id == campaign_id, CallAttempt.outcome == outcome
            )
        )
        return {str(i) for i in ids}


def test_the_calls_list_filters_as_get_calls_does(api: Api) -> None:
    secret, campaign_id = account_with_campaign(api)
    _, other_id = account_with_campaign(api, "Theirs")
    client = sign_in(api, secret)
    everything = client.get("/ui/calls")
    assert everything.status_code == 200
    assert "8 call attempt(s)" in everything.text  # RESULTS records eight attempts
    answered = client.get("/ui/calls", params={"outcome": "answered"})
    assert "2 call attempt(s)" in answered.text
    for attempt_id in attempt_ids(api, campaign_id, "answered"):
        assert f'data-attempt-id="{attempt_id}"' in answered.text
    for attempt_id in attempt_ids(api, other_id, "answered"):
        assert attempt_id not in everything.text
    api_total = api.client(secret).get("/calls", params={"outcome": "no_answer,busy"}).json()
    several = client.get("/ui/calls", params=[("outcome", "no_answer"), ("outcome", "busy")])
    assert f"{api_total['meta']['total']} call attempt(s)" in several.text
    searched = client.get("/ui/calls", params={"q": "Name c4"})
    assert "2 call attempt(s)" in searched.text
    paged = client.get("/ui/calls", params={"limit": 3, "sort_field": "attempt_no"})
    assert paged.text.count("data-attempt-id=") == 3
    assert "offset=3" in paged.text


def test_a_bad_filter_is_refused_naming_it(api: Api) -> None:
    secret, _ = account_with_campaign(api)
    client = sign_in(api, secret)
    bad_date = client.get("/ui/calls", params={"date_from": "yesterday"})
    assert bad_date.status_code == 422
    assert "date_from" in bad_date.text
    bad_sort = client.get("/ui/calls", params={"sort_field": "secret_column"})
    assert bad_sort.status_code == 422
    assert "sort_field" in bad_sort.text


def test_the_call_page_shows_history_analysis_and_cost_and_only_to_its_account(
    api: Api,
) -> None:
    secret, campaign_id = account_with_campaign(api)
    other_secret, _ = account_with_campaign(api, "Theirs")
    ids = sorted(attempt_ids(api, campaign_id, "answered"))
    page = sign_in(api, secret).get(f"/ui/calls/{ids[0]}")
    assert page.status_code == 200
    assert "Status history" in page.text
    assert "finished" in page.text
    assert "milli-cents" in page.text
    assert sign_in(api, other_secret).get(f"/ui/calls/{ids[0]}").status_code == 404


# ------------------------------------------------------------------------------- import

BAD_ROW_CSV = (
    "customer_id,name,phone,email\n"
    "n1,New One,+390612349001,one@example.com\n"
    "n2,New Two,+390612349002,not-an-email\n"
    "n3,New Three,+390612349003,three@example.com\n"
)


def enrolled_count(api: Api, campaign_id: uuid.UUID) -> int:
    with transaction(api.database_url) as session:
        ids = session.scalars(select(Enrollment.id).where(Enrollment.campaign_id == campaign_id))
        return len(list(ids))


def preview(client: httpx.Client, campaign_id: uuid.UUID, text: str) -> httpx.Response:
    page = f"/ui/campaigns/{campaign_id}/import"
    token = csrf_of(client.get(page))
    return client.post(
        f"{page}/preview",
        data={"csrf_token": token},
        files={"file": ("customers.csv", text.encode(), "text/csv")},
    )


def test_the_import_preview_lists_row_errors_and_writes_nothing(api: Api) -> None:
    secret, campaign_id = account_with_campaign(api)
    client = sign_in(api, secret)
    before = enrolled_count(api, campaign_id)
    shown = preview(client, campaign_id, BAD_ROW_CSV)
    assert shown.status_code == 200, shown.text
    assert "3 row(s) read" in shown.text
    assert "2 would be enrolled" in shown.text
    errors = shown.text[shown.text.index('id="row-errors"') :]
    assert '<td class="num">3</td><td>email</td>' in errors  # the file's own line number
    assert enrolled_count(api, campaign_id) == before  # a preview writes nothing


def test_the_import_commits_the_good_rows_and_the_rejects_download(api: Api) -> None:
    secret, campaign_id = account_with_campaign(api)
    client = sign_in(api, secret)
    before = enrolled_count(api, campaign_id)
    shown = preview(client, campaign_id, BAD_ROW_CSV)
    token = csrf_of(shown)
    form = {"csrf_token": token, "csv_text": "\n" + BAD_ROW_CSV, "default_region": ""}
    rejects = client.post(f"/ui/campaigns/{campaign_id}/import/rejects", files=_fields(form))
    assert rejects.status_code == 200
    assert rejects.headers["content-type"].startswith("text/csv")
    assert "attachment" in rejects.headers["content-disposition"]
    lines = rejects.text.splitlines()
    assert lines[0].startswith("line,field,reason")
    assert lines[1].startswith("3,email,")
    all_or_nothing = client.post(f"/ui/campaigns/{campaign_id}/import/commit", files=_fields(form))
    assert all_or_nothing.status_code == 422  # without partial: nothing imported
    assert enrolled_count(api, campaign_id) == before
    committed = client.post(
        f"/ui/campaigns/{campaign_id}/import/commit", files=_fields(form | {"partial": "true"})
    )
    assert committed.status_code == 303, committed.text
    assert enrolled_count(api, campaign_id) == before + 2
    assert "Imported: 2 enrolled" in client.get(f"/ui/campaigns/{campaign_id}").text


def test_an_unreadable_file_is_refused_with_a_message(api: Api) -> None:
    secret, campaign_id = account_with_campaign(api)
    client = sign_in(api, secret)
    latin1 = preview(client, campaign_id, "")
    assert latin1.status_code == 422
    assert "empty" in latin1.text
    no_phone_column = preview(client, campaign_id, "who,what\n1,2\n")
    assert no_phone_column.status_code == 422
    assert "cannot be read" in no_phone_column.text


def test_importing_needs_the_apis_write_scopes(api: Api) -> None:
    account_name = f"acct-{uuid.uuid4().hex[:8]}"
    campaign_id = campaign_with_results(api.database_url, account_name)
    secret = api.key(api.account(account_name), ["campaigns:read", "campaigns:write"])
    page = sign_in(api, secret).get(f"/ui/campaigns/{campaign_id}/import")
    assert page.status_code == 403
    assert "customers:write" in page.text


def _fields(form: dict[str, str]) -> dict[str, tuple[None, str]]:
    """Form fields sent as multipart (as the preview's forms send them)."""
    return {name: (None, value) for name, value in form.items()}


def test_a_big_campaign_leaves_the_timeline_to_dialer_plan(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dialer.api.ui import campaigns

    monkeypatch.setattr(campaigns, "MAX_TIMELINE_CONTACTS", 5)  # the campaign has 6
    secret, campaign_id = account_with_campaign(api)
    page = sign_in(api, secret).get(f"/ui/campaigns/{campaign_id}")
    assert page.status_code == 200
    assert "More than 5 contacts: run <code>dialer plan" in page.text
    assert 'class="chart timeline"' not in page.text
