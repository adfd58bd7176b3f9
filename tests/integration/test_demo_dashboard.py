"""The demo's dashboard key: issued for the demo account, printed, revoked at the end."""

from __future__ import annotations

import io
import re

from rich.console import Console

from dialer.composition import Runtime
from dialer.demo.dashboard import close_dashboard, open_dashboard
from dialer.services.api_keys import SCOPES, authenticate
from dialer.settings import Settings
from models.session import transaction


def test_the_printed_key_signs_in_while_the_demo_runs_and_not_after(
    clean_db: str, redis_url: str, base_settings: Settings
) -> None:
    runtime = Runtime(settings=base_settings, database_url=clean_db, redis_url=redis_url)
    env = {"DIALER_API_PORT": "8123"}
    out = io.StringIO()
    access = open_dashboard(Console(file=out, width=300), runtime, env, "demo")
    printed = out.getvalue()
    assert "http://127.0.0.1:8123/ui" in printed
    match = re.search(r"sk_[A-Za-z0-9_-]+", printed)
    assert match is not None
    with transaction(clean_db) as session:
        principal = authenticate(session, match.group())
        assert principal is not None
        assert principal.scopes == frozenset(SCOPES)
    close_dashboard(runtime, access)
    with transaction(clean_db) as session:
        assert authenticate(session, match.group()) is None
