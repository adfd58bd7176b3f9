"""What a sandbox flavour is: one provider's API shapes and webhook scheme, on the shared engine.

A flavour (``seed004``, ``vapi``, ``retell``, ``twilio``, ``elevenlabs``: one module
each under ``dialer.sandbox``) brings:

- ``router``: the provider's endpoints (create, get, and where the provider has one,
  the list/filter a lookup by our metadata uses), answering in its shapes; each
  create handler validates, then hands the call to ``dialer.sandbox.engine``,
  which draws faults, creates the call in the ledger and schedules its webhooks;
- ``sign``: the provider's webhook signature, computed at delivery time;
- ``credentials``: the API credential and signing secret the dialer is configured
  with (``DIALER_<PROVIDER>_*``), so `dialer sandbox --flavor X` accepts the dialer;
- ``webhook_path``: where the dialer's ingress takes this provider's webhooks;
- ``error_body``: the provider's error shape.

Everything a flavour renders comes from one ``CallPlan`` (outcome and timeline drawn
at placement by ``dialer.providers.simulation``), read as of the sandbox's clock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, NamedTuple, TypeVar

from fastapi import APIRouter
from pydantic_settings import BaseSettings

from dialer.providers.catalog import PROVIDERS
from dialer.providers.registry import load_options
from dialer.sandbox.state import ApiError
from dialer.sandbox.webhooks import JSON
from dialer.settings import Settings

FORM: Final = "application/x-www-form-urlencoded"
# (secret, the URL posted to, raw body, wall-clock Unix seconds) -> signature headers
SignWith = Callable[[str, str, bytes, float], dict[str, str]]


class Credentials(NamedTuple):
    """What the sandbox accepts and signs with (``api_key``: the flavour reads it its way)."""

    api_key: str
    webhook_secret: str


class Webhook(NamedTuple):
    """One webhook a call will send: when (sandbox time), what, and where if not the call's."""

    due: datetime
    body: bytes
    content_type: str = JSON
    url: str | None = None


def seed004_error_body(error: ApiError) -> dict[str, Any]:
    return error.body()


@dataclass(frozen=True)
class Flavor:
    name: str
    title: str
    router: APIRouter
    sign: SignWith
    credentials: Callable[[Settings], Credentials]
    webhook_path: str
    error_body: Callable[[ApiError], dict[str, Any]] = seed004_error_body


OptionsT = TypeVar("OptionsT", bound=BaseSettings)


def provider_options(name: str, model: type[OptionsT]) -> OptionsT:
    """The dialer's ``DIALER_<NAME>_*`` settings of a provider (SettingsError naming a bad one)."""
    options = load_options(PROVIDERS.voice_provider(name))
    if not isinstance(options, model):
        raise TypeError(f"{name}: expected {model.__name__} settings")
    return options
