"""Twilio Programmable Voice flavour: the Calls resource and signed status callbacks.

Shapes as ``dialer.providers.twilio_voice`` sends and reads them (its docstring cites
the pages): ``POST /2010-04-01/Accounts/{AccountSid}/Calls.json`` with a form body
(``To``, ``From``, ``Twiml`` | ``Url`` | ``ApplicationSid``, ``StatusCallback``,
``StatusCallbackEvent`` repeated, ``MachineDetection``), Basic auth (account SID or
API key SID and its secret), answered with the call resource in JSON; ``GET
.../Calls/{Sid}.json``. Twilio keeps no idempotency key and no metadata, and has no
lookup by ours: every create is a new call, and our key and attempt id ride in the
``StatusCallback`` URL's query, which is how the ledger tells attempts apart.

Status callbacks (form-encoded, to the ``StatusCallback`` URL, only for the events
asked for; ``completed`` alone when none are): ``initiated``, ``ringing``,
``answered`` (``CallStatus=in-progress``) and ``completed`` with the final
``CallStatus`` (completed, busy, no-answer, failed), ``CallDuration``, and with
answering machine detection on, ``AnsweredBy`` (``human``; ``machine_start`` for a
voicemail). Signed ``X-Twilio-Signature`` over the full URL and the sorted params
with the auth token (Twilio's own ``RequestValidator``). ``Timestamp`` is the
sandbox's clock (the dialer's): with a sped-up clock, widen
``DIALER_TWILIO_WEBHOOK_TOLERANCE_SECONDS`` (the demo and tests do).
"""

from __future__ import annotations

import base64
import binascii
import secrets
from datetime import datetime
from email.utils import format_datetime
from typing import Annotated, Any, Final
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit

from fastapi import APIRouter, Depends, Request

from dialer.policies.vocabulary import ProviderCallStatus
from dialer.providers import twilio_voice
from dialer.providers.base import PlaceCallRequest
from dialer.providers.simulation import is_unreachable_number
from dialer.providers.voice_adapter import E164_PATTERN, IDEMPOTENCY_METADATA_KEY
from dialer.sandbox import calls
from dialer.sandbox.calls import Ending
from dialer.sandbox.engine import NewCall, place
from dialer.sandbox.flavor import FORM, Credentials, Flavor, Webhook, provider_options
from dialer.sandbox.ledger import StoredCall
from dialer.sandbox.state import ApiError, SandboxState, State, same_secret, sandbox_state
from dialer.settings import Settings

API_VERSION: Final = "2010-04-01"
MAX_FORM_FIELDS: Final = 50
_ANSWERING: Final = ("Twiml", "Url", "ApplicationSid")
_FINAL_STATUS: Final = {
    Ending.ANSWERED: "completed",
    Ending.VOICEMAIL: "completed",
    Ending.NO_ANSWER: "no-answer",
    Ending.BUSY: "busy",
    Ending.FAILED: "failed",
}
_LIVE_STATUS: Final = {
    ProviderCallStatus.QUEUED: "queued",
    ProviderCallStatus.RINGING: "ringing",
    ProviderCallStatus.IN_PROGRESS: "in-progress",
}
# Twilio's error codes for the refusals the sandbox makes.
_ERROR_CODES: Final = {401: 20003, 404: 20404, 429: 20429, 503: 20503, 504: 20504}


def require_basic_auth(
    request: Request, state: Annotated[SandboxState, Depends(sandbox_state)]
) -> None:
    """Twilio authorises with Basic auth: ``AccountSid:AuthToken`` or an API key's pair."""
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    try:
        offered = base64.b64decode(encoded, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        offered = ""
    if scheme.lower() != "basic" or not same_secret(offered, state.config.api_key):
        raise ApiError(401, "20003", "Authenticate: missing or wrong credentials")


router = APIRouter(tags=["voice (Twilio)"], dependencies=[Depends(require_basic_auth)])


@router.post("/2010-04-01/Accounts/{account_sid}/Calls.json", status_code=201)
async def create_call(account_sid: str, request: Request, state: State) -> dict[str, Any]:
    form = await _form(request)
    to, from_number = _one(form, "To"), _one(form, "From")
    if not E164_PATTERN.fullmatch(to) or is_unreachable_number(to):
        raise ApiError(400, "21211", f"Invalid 'To' Phone Number: {to[:20]}")
    if not E164_PATTERN.fullmatch(from_number):
        raise ApiError(400, "21212", "Invalid 'From' Phone Number")
    answering = [name for name in _ANSWERING if form.get(name)]
    if len(answering) != 1:
        raise ApiError(400, "21205", "One of Twiml, Url or ApplicationSid is required")
    callback = _one(form, "StatusCallback", required=False)
    query = dict(parse_qsl(urlsplit(callback).query)) if callback else {}
    call_sid = "CA" + secrets.token_hex(16)
    request_ = PlaceCallRequest(
        idempotency_key=query.get(IDEMPOTENCY_METADATA_KEY) or f"none:{call_sid}",
        agent_id=_one(form, answering[0])[:200] if answering[0] != "Twiml" else "twiml",
        to=to,
        from_number=from_number,
        metadata=query,
    )
    extra = {
        "account_sid": account_sid,
        "events": form.get("StatusCallbackEvent") or ["completed"],
        "machine_detection": _one(form, "MachineDetection", required=False) or "off",
    }
    new = NewCall(call_sid, request_, callback or None, extra=extra)
    stored = await place(state, new, webhooks_of, once_per_key=False)
    return call_resource(stored, calls.created_at(stored.plan))


@router.get("/2010-04-01/Accounts/{account_sid}/Calls/{call_sid}.json")
async def read_call(account_sid: str, call_sid: str, state: State) -> dict[str, Any]:
    stored = state.ledger.get(call_sid)
    if stored is None or stored.extra.get("account_sid") != account_sid:
        raise ApiError(404, "20404", f"The requested resource {call_sid} was not found")
    return call_resource(stored, state.clock())


async def _form(request: Request) -> dict[str, list[str]]:
    try:
        text = (await request.body()).decode()
        return parse_qs(text, keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS)
    except (UnicodeDecodeError, ValueError):
        raise ApiError(400, "20001", "the body is not a form") from None


def _one(form: dict[str, list[str]], name: str, *, required: bool = True) -> str:
    values = form.get(name) or [""]
    if required and not values[0]:
        raise ApiError(
            400, "21201" if name == "To" else "20001", f"Required parameter {name} missing"
        )
    return values[0]


def _rfc2822(when: datetime | None) -> str | None:
    return None if when is None else format_datetime(when)


def call_resource(stored: StoredCall, now: datetime) -> dict[str, Any]:
    """The call resource as ``GET .../Calls/{Sid}.json`` shows it at ``now`` (sandbox time)."""
    plan, record = stored.plan, stored.plan.record_at(now)
    over = calls.is_over(record)
    started = plan.connected_at if plan.connected_at and now >= plan.connected_at else None
    status = (
        _FINAL_STATUS[calls.ending(plan)]
        if over
        else _LIVE_STATUS.get(ProviderCallStatus(record.status), "queued")
    )
    resource: dict[str, Any] = {
        "sid": plan.final.id,
        "account_sid": stored.extra.get("account_sid"),
        "to": plan.final.to,
        "from": plan.final.from_number,
        "status": status,
        "direction": "outbound-api",
        "api_version": API_VERSION,
        "date_created": _rfc2822(calls.created_at(plan)),
        "date_updated": _rfc2822(min(now, calls.ended_at(plan))),
        "start_time": _rfc2822(started),
        "end_time": _rfc2822(calls.ended_at(plan)) if over else None,
        "duration": str(_duration(stored)) if over else None,
        "price": f"-{calls.dollars(plan.final.cost_millicents) or 0:.5f}" if over else None,
        "price_unit": "USD",
        "answered_by": _answered_by(stored) if started else None,
        "uri": f"/2010-04-01/Accounts/{stored.extra.get('account_sid')}/Calls/{plan.final.id}.json",
    }
    return resource


def _duration(stored: StoredCall) -> int:
    connected = stored.plan.connected_at
    return (
        0 if connected is None else int((calls.ended_at(stored.plan) - connected).total_seconds())
    )


def _answered_by(stored: StoredCall) -> str | None:
    if stored.extra.get("machine_detection", "off") == "off":
        return None
    return "machine_start" if calls.ending(stored.plan) is Ending.VOICEMAIL else "human"


def webhooks_of(stored: StoredCall) -> list[Webhook]:
    """The status callbacks asked for, numbered in order, to the StatusCallback URL."""
    plan = stored.plan
    moments: list[tuple[str, datetime | None, str]] = [
        ("initiated", calls.created_at(plan), "initiated"),
        ("ringing", plan.final.ringing_at, "ringing"),
        ("answered", plan.connected_at, "in-progress"),
        ("completed", calls.ended_at(plan), _FINAL_STATUS[calls.ending(plan)]),
    ]
    wanted = set(stored.extra.get("events", ["completed"]))
    hooks, sequence = [], 0
    for event, when, status in moments:
        if when is None or event not in wanted:
            continue
        params = _callback_params(stored, status, when, sequence)
        answered = _answered_by(stored) if plan.connected_at is not None else None
        if event in ("answered", "completed") and answered:
            params["AnsweredBy"] = answered
        if event == "completed":
            params["CallDuration"] = str(_duration(stored))
        hooks.append(Webhook(when, urlencode(params).encode(), FORM))
        sequence += 1
    return hooks


def _callback_params(
    stored: StoredCall, status: str, when: datetime, sequence: int
) -> dict[str, str]:
    final = stored.plan.final
    return {
        "AccountSid": str(stored.extra.get("account_sid")),
        "ApiVersion": API_VERSION,
        "CallSid": final.id,
        "CallStatus": status,
        "CallbackSource": "call-progress-events",
        "Direction": "outbound-api",
        "From": final.from_number or "",
        "To": final.to,
        "SequenceNumber": str(sequence),
        "Timestamp": format_datetime(when),
    }


def _credentials(settings: Settings) -> Credentials:
    del settings
    options = provider_options(twilio_voice.PROVIDER_NAME, twilio_voice.Settings)
    token = options.auth_token.get_secret_value()
    if options.api_key_sid and options.api_key_secret:
        user = f"{options.api_key_sid}:{options.api_key_secret.get_secret_value()}"
    else:
        user = f"{options.account_sid}:{token}"
    return Credentials(user, token)


def _error_body(error: ApiError) -> dict[str, Any]:
    code = int(error.code) if error.code.isdigit() else _ERROR_CODES.get(error.status, 20500)
    return {
        "code": code,
        "message": error.message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": error.status,
    }


FLAVOR = Flavor(
    name="twilio",
    title="Twilio Programmable Voice",
    router=router,
    sign=lambda secret, url, raw, _now: twilio_voice.sign(url, raw, secret),
    credentials=_credentials,
    webhook_path=twilio_voice.WEBHOOK_PATH,
    error_body=_error_body,
)
