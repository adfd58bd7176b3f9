"""SQLAlchemy 2.0 typed models, the engine/session factory and Alembic migrations.

The tables load on first use of any name below (``from models import Campaign``),
all of them at once so ``Base.metadata`` is always whole; importing the package alone
loads nothing. That keeps ``models.vocabulary`` (the project's words, standard library
only) light: the pure policies import it and must not drag SQLAlchemy in with it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from models.accounts import Account, Agent, ApiKey, Channel, PhoneNumber
    from models.attempts import CallAttempt
    from models.base import Base
    from models.campaigns import Campaign, DailyClaims, Enrollment, RotationCursor
    from models.customers import Customer
    from models.events import OutboxEvent, ProviderEvent
    from models.messages import ContactEvent, Message
    from models.suppressions import Suppression
    from models.webhooks import WebhookDelivery, WebhookEndpoint

_HOME: dict[str, str] = {
    "Account": "models.accounts",
    "Agent": "models.accounts",
    "ApiKey": "models.accounts",
    "Channel": "models.accounts",
    "PhoneNumber": "models.accounts",
    "CallAttempt": "models.attempts",
    "Base": "models.base",
    "Campaign": "models.campaigns",
    "DailyClaims": "models.campaigns",
    "Enrollment": "models.campaigns",
    "RotationCursor": "models.campaigns",
    "Customer": "models.customers",
    "OutboxEvent": "models.events",
    "ProviderEvent": "models.events",
    "ContactEvent": "models.messages",
    "Message": "models.messages",
    "Suppression": "models.suppressions",
    "WebhookDelivery": "models.webhooks",
    "WebhookEndpoint": "models.webhooks",
}

__all__ = [
    "Account",
    "Agent",
    "ApiKey",
    "Base",
    "CallAttempt",
    "Campaign",
    "Channel",
    "ContactEvent",
    "Customer",
    "DailyClaims",
    "Enrollment",
    "Message",
    "OutboxEvent",
    "PhoneNumber",
    "ProviderEvent",
    "RotationCursor",
    "Suppression",
    "WebhookDelivery",
    "WebhookEndpoint",
]


def load_tables() -> None:
    """Import every table module, so the metadata knows every table."""
    for module in sorted(set(_HOME.values())):
        importlib.import_module(module)


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'models' has no attribute {name!r}")
    load_tables()
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value
