"""SQLAlchemy 2.0 typed models, the engine/session factory and Alembic migrations."""

from models.accounts import Account, Agent, ApiKey, Channel, PhoneNumber
from models.attempts import CallAttempt
from models.base import Base
from models.campaigns import Campaign, DailyClaims, Enrollment, RotationCursor
from models.customers import Customer
from models.events import OutboxEvent, ProviderEvent
from models.messages import ContactEvent, Message

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
]
