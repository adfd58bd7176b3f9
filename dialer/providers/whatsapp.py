"""WhatsApp Cloud API (Meta Graph API style): the sender and the webhook format.

Sending: ``POST {base_url}/{api_version}/{phone_number_id}/messages`` with a Bearer
token. A request is a free-form text message, unless its metadata names a template:

- ``whatsapp_template``: the approved template's name (then the body is not sent);
- ``whatsapp_template_language``: its language code (default ``en_US``);
- ``whatsapp_template_params``: a JSON array of strings, the body's ``{{1}}``, ``{{2}}``...

WhatsApp only delivers free-form text inside the 24 hours after the customer last
wrote; a first contact needs a template.

The Cloud API has no idempotency key, so every send goes through a SendOnceGuard
(Redis): a re-sent task gets the first send's ``wamid`` back (see send_guard for the
window that remains).

Webhooks: one body can carry several events (``entry[].changes[].value.statuses[]``
and ``value.messages[]``). ``split_webhook`` cuts a body into one-event bodies of the
same shape, so each event is stored in the inbox on its own and parsed back with
``parse_single_event``. Event ids are ``{wamid}:{status}`` and ``{wamid}:inbound``,
stable across re-deliveries.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import httpx
import redis

from dialer.policies.vocabulary import Channel
from dialer.providers.base import (
    InboundMessage,
    MessageStatusUpdate,
    PermanentProviderError,
    ProviderEvent,
    SendMessageRequest,
    SendResult,
    TransientProviderError,
)
from dialer.providers.events import MESSAGE_INBOUND_EVENT, MESSAGE_STATUS_EVENT, MESSAGE_STATUSES
from dialer.providers.retry_after import parse_retry_after
from dialer.providers.send_guard import SendOnceGuard
from dialer.settings import Settings

PROVIDER_NAME: Final = "whatsapp"
DEFAULT_API_VERSION: Final = "v21.0"
WEBHOOK_OBJECT: Final = "whatsapp_business_account"
TEMPLATE_KEY: Final = "whatsapp_template"
TEMPLATE_LANGUAGE_KEY: Final = "whatsapp_template_language"
TEMPLATE_PARAMS_KEY: Final = "whatsapp_template_params"
DEFAULT_TEMPLATE_LANGUAGE: Final = "en_US"
# Cloud error codes that mean "not now" even when the HTTP status is 400: rate and
# throughput limits, and the API's own "temporarily unavailable" answers.
TRANSIENT_CLOUD_CODES: Final = frozenset({1, 2, 4, 80007, 130429, 131000, 131016, 131056, 133004})

Parser = Callable[[Mapping[str, Any]], ProviderEvent]


# --------------------------------------------------------------------------- sending


@dataclass(frozen=True)
class WhatsAppConfig:
    base_url: str
    token: str
    phone_number_id: str
    api_version: str = DEFAULT_API_VERSION
    connect_timeout_seconds: float = 3.0
    read_timeout_seconds: float = 10.0
    max_connections: int = 20


class WhatsAppCloudProvider:
    """A MessageProvider for the whatsapp channel over one pooled HTTP client."""

    name = PROVIDER_NAME

    def __init__(self, config: WhatsAppConfig, guard: SendOnceGuard) -> None:
        self._guard = guard
        self._client = _http_client(config)
        self._path = f"/{config.api_version}/{config.phone_number_id}/messages"

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        redis_url: str,
        *,
        phone_number_id: str,
        api_version: str = DEFAULT_API_VERSION,
    ) -> WhatsAppCloudProvider:
        config = WhatsAppConfig(
            base_url=settings.whatsapp_base_url,
            token=settings.whatsapp_token.get_secret_value(),
            phone_number_id=phone_number_id,
            api_version=api_version,
            connect_timeout_seconds=settings.provider_connect_timeout_seconds,
            read_timeout_seconds=settings.provider_read_timeout_seconds,
        )
        client = redis.Redis.from_url(redis_url, decode_responses=True)
        return cls(config, SendOnceGuard(client, "whatsapp"))

    def send(self, request: SendMessageRequest) -> SendResult:
        """Send once per idempotency key; a repeat returns the first send's wamid."""
        body = message_body(request)
        wamid = self._guard.send_once(request.idempotency_key, lambda: self._post(body))
        return SendResult(provider_message_id=wamid, status="sent")

    def close(self) -> None:
        self._client.close()

    def _post(self, body: Mapping[str, Any]) -> str:
        try:
            response = self._client.post(self._path, json=body)
        except httpx.TransportError as exc:  # connect errors and timeouts alike
            raise TransientProviderError(f"whatsapp unreachable: {exc!r}") from exc
        _raise_for_error(response)
        return _sent_message_id(response)


def _http_client(config: WhatsAppConfig) -> httpx.Client:
    timeout = httpx.Timeout(config.read_timeout_seconds, connect=config.connect_timeout_seconds)
    limits = httpx.Limits(
        max_connections=config.max_connections, max_keepalive_connections=config.max_connections
    )
    return httpx.Client(
        base_url=config.base_url,
        headers={"Authorization": f"Bearer {config.token}"},
        timeout=timeout,
        limits=limits,
    )


def message_body(request: SendMessageRequest) -> dict[str, Any]:
    """The Cloud API request body: a template when the metadata names one, else text."""
    _validate(request)
    body: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": cloud_number(request.to),
    }
    template = request.metadata.get(TEMPLATE_KEY)
    if template:
        return body | {"type": "template", "template": _template(template, request.metadata)}
    return body | {"type": "text", "text": {"preview_url": False, "body": request.body}}


def _validate(request: SendMessageRequest) -> None:
    if not request.idempotency_key:
        raise PermanentProviderError("idempotency_key is required", code="validation_error")
    if request.channel != Channel.WHATSAPP:
        raise PermanentProviderError(
            f"unsupported channel {request.channel!r}", code="unsupported_channel"
        )
    if len(cloud_number(request.to)) < 7:
        raise PermanentProviderError("recipient is not a phone number", code="invalid_recipient")
    if not request.body.strip() and not request.metadata.get(TEMPLATE_KEY):
        raise PermanentProviderError("a text message needs a body", code="validation_error")


def _template(name: str, metadata: Mapping[str, str]) -> dict[str, Any]:
    language = metadata.get(TEMPLATE_LANGUAGE_KEY) or DEFAULT_TEMPLATE_LANGUAGE
    template: dict[str, Any] = {"name": name, "language": {"code": language}}
    params = _template_params(metadata.get(TEMPLATE_PARAMS_KEY))
    if params:
        parameters = [{"type": "text", "text": value} for value in params]
        template["components"] = [{"type": "body", "parameters": parameters}]
    return template


def _template_params(raw: str | None) -> list[str]:
    if not raw:
        return []
    try:
        params = json.loads(raw)
    except json.JSONDecodeError:
        params = None
    if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
        raise PermanentProviderError(
            f"{TEMPLATE_PARAMS_KEY} must be a JSON array of strings", code="validation_error"
        )
    return params


def cloud_number(phone: str) -> str:
    """The Cloud API's number form: E.164 without the plus (``+3906...`` -> ``3906...``)."""
    return "".join(ch for ch in phone if ch.isdigit())


def _raise_for_error(response: httpx.Response) -> None:
    """429, 5xx and throttling codes are transient; every other non-2xx is permanent."""
    if response.is_success:
        return
    code, message = _cloud_error(response)
    text = f"whatsapp {response.status_code}: {message}"
    status = response.status_code
    if status == 429 or status >= 500 or code in TRANSIENT_CLOUD_CODES:
        retry_after = parse_retry_after(response.headers.get("Retry-After"), datetime.now(UTC))
        raise TransientProviderError(text, retry_after_seconds=retry_after)
    raise PermanentProviderError(text, code=f"whatsapp_{code}" if code else f"http_{status}")


def _cloud_error(response: httpx.Response) -> tuple[int | None, str]:
    """The Graph API error's code and message: ``{"error": {"code": 100, "message": ...}}``."""
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        error = None
    if not isinstance(error, Mapping):
        return None, response.reason_phrase or "error"
    code = error.get("code")
    message = str(error.get("message") or response.reason_phrase)
    return (code if isinstance(code, int) else None), message


def _sent_message_id(response: httpx.Response) -> str:
    """``{"messages": [{"id": "wamid..."}]}``; anything else is treated as not sent."""
    try:
        wamid = response.json()["messages"][0]["id"]
    except (ValueError, KeyError, IndexError, TypeError):
        wamid = None
    if not isinstance(wamid, str) or not wamid:
        raise PermanentProviderError("whatsapp answered without a message id", code="bad_response")
    return wamid


# --------------------------------------------------------------------------- webhooks


def parse_webhook(payload: Mapping[str, Any]) -> list[ProviderEvent]:
    """Every event of a Cloud webhook body; raises ValueError naming the bad field."""
    return [event for event, _ in _walk(payload)]


def split_webhook(payload: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One body per event, in the same shape, for the inbox; validates all of them."""
    return [single for _, single in _walk(payload)]


def parse_single_event(payload: Mapping[str, Any]) -> ProviderEvent:
    """The one event of a body made by split_webhook (the inbox's parser for WhatsApp)."""
    events = parse_webhook(payload)
    if len(events) != 1:
        raise ValueError(f"whatsapp: field 'entry' must hold exactly one event, got {len(events)}")
    return events[0]


def is_whatsapp_webhook(payload: Mapping[str, Any]) -> bool:
    return payload.get("object") == WEBHOOK_OBJECT


def whatsapp_aware(parse: Parser) -> Parser:
    """A parser for the whole inbox: WhatsApp bodies to parse_single_event, others to ``parse``.

    apply_stored re-parses a stored row without knowing its provider; the Cloud
    shape (``"object": "whatsapp_business_account"``) tells.
    """

    def parse_any(payload: Mapping[str, Any]) -> ProviderEvent:
        return parse_single_event(payload) if is_whatsapp_webhook(payload) else parse(payload)

    return parse_any


def _walk(payload: Mapping[str, Any]) -> Iterator[tuple[ProviderEvent, dict[str, Any]]]:
    root = _object(payload, "payload")
    if root.get("object") != WEBHOOK_OBJECT:
        raise _invalid("object", f"'{WEBHOOK_OBJECT}'", root.get("object"))
    for i, entry in enumerate(_list(root, "entry", "entry")):
        yield from _walk_entry(_object(entry, f"entry[{i}]"), f"entry[{i}]")


def _walk_entry(
    entry: Mapping[str, Any], path: str
) -> Iterator[tuple[ProviderEvent, dict[str, Any]]]:
    for j, raw in enumerate(_list(entry, "changes", f"{path}.changes")):
        change_path = f"{path}.changes[{j}]"
        change = _object(raw, change_path)
        if change.get("field") != "messages":
            continue  # account, template and quality updates carry no message events
        value = _object(change.get("value"), f"{change_path}.value")
        for kind, read in (("statuses", _status_event), ("messages", _inbound_event)):
            items = _list(value, kind, f"{change_path}.value.{kind}", required=False)
            for k, item in enumerate(items):
                item_path = f"{change_path}.value.{kind}[{k}]"
                yield read(_object(item, item_path), item_path), _single(entry, value, kind, item)


def _single(
    entry: Mapping[str, Any], value: Mapping[str, Any], kind: str, item: Any
) -> dict[str, Any]:
    """A one-event body: the entry and value with only this status or message left."""
    rest = {key: part for key, part in value.items() if key not in ("statuses", "messages")}
    change = {"field": "messages", "value": rest | {kind: [item]}}
    return {"object": WEBHOOK_OBJECT, "entry": [{"id": entry.get("id"), "changes": [change]}]}


def _status_event(item: Mapping[str, Any], path: str) -> ProviderEvent:
    wamid = _text(item, "id", path)
    status = _text(item, "status", path)
    if status not in MESSAGE_STATUSES:
        raise _invalid(f"{path}.status", "one of " + ", ".join(MESSAGE_STATUSES), status)
    error = _status_error(item.get("errors")) if status == "failed" else None
    update = MessageStatusUpdate(provider_message_id=wamid, status=status, error=error)
    return ProviderEvent(
        provider=PROVIDER_NAME,
        event_id=f"{wamid}:{status}",
        kind=MESSAGE_STATUS_EVENT,
        occurred_at=_timestamp(item, path),
        message_status=update,
    )


def _status_error(errors: Any) -> str:
    """``errors: [{"code": 131026, "title": "Message undeliverable"}]`` -> "131026: ..."."""
    first = errors[0] if isinstance(errors, list) and errors else None
    if not isinstance(first, Mapping):
        return "failed"
    title = first.get("title") or first.get("message") or "failed"
    return f"{first.get('code')}: {title}" if first.get("code") is not None else str(title)


def _inbound_event(item: Mapping[str, Any], path: str) -> ProviderEvent:
    wamid = _text(item, "id", path)
    context = item.get("context")
    reply_to = context.get("id") if isinstance(context, Mapping) else None
    inbound = InboundMessage(
        channel=Channel.WHATSAPP,
        from_address="+" + cloud_number(_text(item, "from", path)),
        text=_reply_text(item),
        provider_message_id=wamid,
        in_reply_to=reply_to if isinstance(reply_to, str) and reply_to else None,
    )
    return ProviderEvent(
        provider=PROVIDER_NAME,
        event_id=f"{wamid}:inbound",
        kind=MESSAGE_INBOUND_EVENT,
        occurred_at=_timestamp(item, path),
        inbound=inbound,
    )


def _reply_text(item: Mapping[str, Any]) -> str:
    """The words of a reply: text, a template's quick-reply button, or an interactive choice.

    Media and other types have none, but are still a reply (a contact), so they read as "".
    """
    kind = item.get("type")
    part = item.get(kind) if isinstance(kind, str) else None
    if not isinstance(part, Mapping):
        return ""
    if kind == "interactive":
        choice = part.get("button_reply") or part.get("list_reply")
        part = choice if isinstance(choice, Mapping) else {}
    words = part.get("body") or part.get("text") or part.get("title")
    return words if isinstance(words, str) else ""


def _timestamp(item: Mapping[str, Any], path: str) -> datetime:
    """Cloud timestamps are Unix seconds as a string ("1700000000")."""
    raw = _text(item, "timestamp", path)
    try:
        return datetime.fromtimestamp(int(raw), tz=UTC)
    except (ValueError, OverflowError):
        raise _invalid(f"{path}.timestamp", "Unix seconds", raw) from None


def _object(value: Any, path: str) -> Mapping[str, Any]:
    if value is None:
        raise _missing(path)
    if not isinstance(value, Mapping):
        raise _invalid(path, "an object", value)
    return value


def _list(data: Mapping[str, Any], name: str, path: str, *, required: bool = True) -> list[Any]:
    value = data.get(name)
    if value is None and not required:
        return []
    if value is None:
        raise _missing(path)
    if not isinstance(value, list):
        raise _invalid(path, "a list", value)
    return value


def _text(data: Mapping[str, Any], name: str, path: str) -> str:
    value = data.get(name)
    if value is None:
        raise _missing(f"{path}.{name}")
    if not isinstance(value, str) or not value:
        raise _invalid(f"{path}.{name}", "a non-empty string", value)
    return value


def _missing(path: str) -> ValueError:
    return ValueError(f"whatsapp: missing field '{path}'")


def _invalid(path: str, expected: str, value: Any) -> ValueError:
    # Name the type, not the value: values may be phone numbers, and errors are stored.
    shown = repr(value) if isinstance(value, str) and len(value) <= 20 else type(value).__name__
    return ValueError(f"whatsapp: field '{path}' must be {expected}, got {shown}")


# --------------------------------------------------------------------------- builders


def status_webhook(
    wamid: str,
    status: str,
    at: datetime,
    recipient: str,
    *,
    phone_number_id: str,
    errors: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """A Cloud status webhook body for one message (the sandbox sends these)."""
    item: dict[str, Any] = {
        "id": wamid,
        "status": status,
        "timestamp": str(int(at.timestamp())),
        "recipient_id": cloud_number(recipient),
    }
    if errors:
        item["errors"] = [dict(error) for error in errors]
    return _webhook(phone_number_id, {"statuses": [item]})


def inbound_webhook(
    wamid: str,
    sender: str,
    text: str,
    at: datetime,
    *,
    phone_number_id: str,
    in_reply_to: str | None = None,
) -> dict[str, Any]:
    """A Cloud inbound text message webhook body (a customer's reply)."""
    message: dict[str, Any] = {
        "from": cloud_number(sender),
        "id": wamid,
        "timestamp": str(int(at.timestamp())),
        "type": "text",
        "text": {"body": text},
    }
    if in_reply_to:
        message["context"] = {"id": in_reply_to}
    contacts = [{"wa_id": cloud_number(sender), "profile": {"name": "Customer"}}]
    return _webhook(phone_number_id, {"contacts": contacts, "messages": [message]})


def _webhook(phone_number_id: str, events: Mapping[str, Any]) -> dict[str, Any]:
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": phone_number_id, "phone_number_id": phone_number_id},
        **events,
    }
    change = {"field": "messages", "value": value}
    return {"object": WEBHOOK_OBJECT, "entry": [{"id": "waba", "changes": [change]}]}
