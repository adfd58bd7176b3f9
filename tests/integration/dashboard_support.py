"""Helpers for the dashboard's tests: a signed-in browser-like client over real HTTP."""

from __future__ import annotations

import re
from typing import Any

import httpx

from tests.integration.api_support import Api

_CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')


def csrf_of(page: httpx.Response) -> str:
    found = _CSRF.search(page.text)
    assert found, f"no CSRF token in {page.url}: {page.text[:300]}"
    return found.group(1)


def browser(api: Api) -> httpx.Client:
    """A client that keeps cookies and does not follow redirects (tests look at them)."""
    return httpx.Client(base_url=api.base_url, timeout=10, follow_redirects=False)


def sign_in(api: Api, secret: str, client: httpx.Client | None = None) -> httpx.Client:
    client = client or browser(api)
    form = client.get("/ui/login")
    answer = client.post("/ui/login", data={"api_key": secret, "csrf_token": csrf_of(form)})
    assert answer.status_code == 303, answer.text
    return client


def post_form(client: httpx.Client, page: str, action: str, **data: Any) -> httpx.Response:
    """POST ``data`` to ``action`` with the CSRF token of ``page`` (as a browser would)."""
    token = csrf_of(client.get(page))
    return client.post(action, data={"csrf_token": token, **data})
