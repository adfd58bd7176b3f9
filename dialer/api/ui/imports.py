"""Dashboard: imports pages."""

from __future__ import annotations

from fastapi import APIRouter

from dialer.api.ui.session import UI_PATH_PREFIX
from dialer.api.ui.web import UiRoute

router = APIRouter(prefix=UI_PATH_PREFIX, route_class=UiRoute, include_in_schema=False)
