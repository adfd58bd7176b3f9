"""The settings that point the dialer at `dialer sandbox --flavor X` (the demo and tests use it).

``dialer_env`` gives the ``DIALER_*`` environment of worker, beat, api and sandbox
for one flavour: ``DIALER_PROVIDER``, the provider's base URL (the sandbox), fresh
credentials drawn by ``fresh`` (a real provider refuses public ones, and the sandbox
accepts what the dialer is given), caller ids for the providers that name numbers
by id (Vapi, ElevenLabs), and a read timeout short enough that a lost placement
answer (the sandbox holds it ``LOST_ANSWER_HOLD_SECONDS``) is given up on quickly.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Sequence
from typing import Final

READ_TIMEOUT_SECONDS: Final = 1.0
LOST_ANSWER_HOLD_SECONDS: Final = 1.5  # past the read timeout: the answer is lost
# The sandbox dates callbacks on the dialer's clock, which a demo runs days ahead of
# (or behind) the wall clock; Twilio's signed Timestamp is checked against the wall.
TWILIO_FAST_CLOCK_TOLERANCE_SECONDS: Final = 400 * 24 * 3600.0
# Twilio answers a call with TwiML; a ConversationRelay agent is a wss:// URL.
TWILIO_AGENT_ID: Final = "wss://agent.sandbox.invalid/relay"

Fresh = Callable[[str], str]


def fresh_secret(name: str) -> str:
    del name
    return secrets.token_urlsafe(24)


def dialer_env(
    flavor: str,
    sandbox_url: str,
    caller_ids: Sequence[str],
    *,
    calls_per_second: float = 50.0,
    fresh: Fresh = fresh_secret,
) -> dict[str, str]:
    """The provider settings for ``flavor`` against the sandbox at ``sandbox_url``."""
    # A real provider also makes `dialer api` refuse an unset dashboard session secret.
    dashboard = {"DIALER_UI_SESSION_SECRET": fresh("ui_session_secret")}
    if flavor == "seed004":
        return dashboard | {
            "DIALER_PROVIDER": "http",
            "DIALER_PROVIDER_BASE_URL": sandbox_url,
            "DIALER_PROVIDER_CALLS_PER_SECOND": str(calls_per_second),
        }
    prefix = f"DIALER_{flavor.upper()}_"
    env = dashboard | {
        "DIALER_PROVIDER": flavor,
        prefix + "BASE_URL": sandbox_url,
        prefix + "CALLS_PER_SECOND": str(calls_per_second),
        prefix + "READ_TIMEOUT_SECONDS": str(READ_TIMEOUT_SECONDS),
    }
    number_ids = json.dumps({number: f"pn_{n}" for n, number in enumerate(caller_ids)})
    if flavor == "vapi":
        env |= {
            prefix + "API_KEY": fresh("vapi_api_key"),
            prefix + "WEBHOOK_SECRET": fresh("vapi_webhook_secret"),
            prefix + "PHONE_NUMBER_IDS": number_ids,
        }
    elif flavor == "retell":
        env |= {prefix + "API_KEY": fresh("retell_api_key")}
    elif flavor == "twilio":
        env |= {
            prefix + "ACCOUNT_SID": "AC" + secrets.token_hex(16),
            prefix + "AUTH_TOKEN": fresh("twilio_auth_token"),
            prefix + "WEBHOOK_TOLERANCE_SECONDS": str(TWILIO_FAST_CLOCK_TOLERANCE_SECONDS),
        }
    elif flavor == "elevenlabs":
        env |= {
            prefix + "API_KEY": fresh("elevenlabs_api_key"),
            prefix + "WEBHOOK_SECRET": fresh("elevenlabs_webhook_secret"),
            prefix + "PHONE_NUMBER_IDS": number_ids,
        }
    else:
        raise ValueError(f"flavor: {flavor!r} is not a sandbox flavour")
    return env


def agent_id_for(flavor: str, agent_id: str) -> str:
    """The agent id this flavour's provider takes (Twilio: a ConversationRelay URL)."""
    return TWILIO_AGENT_ID if flavor == "twilio" else agent_id
