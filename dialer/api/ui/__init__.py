"""The operators' dashboard, served by ``dialer api`` under /ui (issue 17).

Server-rendered pages (Jinja2, autoescaped) over the services the control API uses,
signed in with an API key (dialer.api.ui.session), live parts refreshed by a small
script of our own (static/dashboard.js); no CDN, so it works offline.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from dialer.api.ui import calls, campaigns, imports, signin
from dialer.api.ui.session import UI_PATH_PREFIX, Signer
from dialer.api.ui.web import Ui, build_templates
from dialer.settings import Settings

STATIC_DIR = Path(__file__).resolve().parent / "static"


def install_ui(app: FastAPI, settings: Settings) -> None:
    """Mount the dashboard's routes and static files on ``app``."""
    app.state.ui = Ui(
        signer=Signer.from_settings(settings),
        templates=build_templates(),
        session_lifetime=timedelta(hours=settings.ui_session_hours),
    )
    for module in (signin, campaigns, imports, calls):
        app.include_router(module.router)
    app.mount(f"{UI_PATH_PREFIX}/static", StaticFiles(directory=STATIC_DIR), name="ui-static")
