"""A fake Twilio Messaging API over real HTTP, written from Twilio's public docs.

``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` with HTTP Basic auth (the
Account SID and auth token) and a form body (To, From | MessagingServiceSid, Body,
StatusCallback) answers 201 with a Message resource (``sid`` SM..., ``status`` queued),
as https://www.twilio.com/docs/messaging/api/message-resource describes. Faults queued
with ``fail_next`` answer Twilio's error shape (``{"code", "message", "status"}``).

With ``callbacks`` on, each message's StatusCallback receives ``sent`` then
``delivered`` (or the statuses given), form-encoded and signed with
``X-Twilio-Signature`` exactly as Twilio signs them. ``inbound`` posts a signed
customer message to a webhook URL, as Twilio does for a number's incoming messages.
"""

from __future__ import annotations

import base64
import itertools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from dialer.providers import twilio_sms
from dialer.sandbox.testing import serve_in_thread

ACCOUNT_SID = "AC" + "1" * 32
AUTH_TOKEN = "fake-twilio-auth-token-" + "t" * 10


@dataclass
class FakeTwilioSms:
    account_sid: str = ACCOUNT_SID
    auth_token: str = AUTH_TOKEN
    callbacks: bool = False
    statuses: tuple[str, ...] = ("sent", "delivered")
    sent: list[dict[str, str]] = field(default_factory=list)
    callback_answers: list[int] = field(default_factory=list)
    faults: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def fail_next(self, status: int, code: int, message: str = "refused") -> None:
        self.faults.append((status, {"code": code, "message": message, "status": status}))

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/2010-04-01/Accounts/{account_sid}/Messages.json")
        async def create(account_sid: str, request: Request) -> JSONResponse:
            if not self._authorised(request, account_sid):
                error = {"code": 20003, "message": "Authenticate", "status": 401}
                return JSONResponse(error, status_code=401)
            form = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
            with self._lock:
                if self.faults:
                    status, body = self.faults.pop(0)
                    return JSONResponse(body, status_code=status)
                sid = f"SM{next(self._ids):032x}"
                self.sent.append(form | {"sid": sid})
            if self.callbacks and form.get("StatusCallback"):
                threading.Thread(target=self._send_statuses, args=(sid, form), daemon=True).start()
            return JSONResponse(
                {"sid": sid, "status": "queued", "to": form.get("To"), "body": form.get("Body")},
                status_code=201,
            )

        return app

    def _authorised(self, request: Request, account_sid: str) -> bool:
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        given = request.headers.get("Authorization", "")
        return account_sid == self.account_sid and given == f"Basic {expected}"

    def _send_statuses(self, sid: str, form: dict[str, str]) -> None:
        for status in self.statuses:
            callback = twilio_sms.status_callback(sid, status, to=form.get("To", ""))
            self.callback_answers.append(self.post_signed(form["StatusCallback"], callback))

    def post_signed(self, url: str, fields: dict[str, str]) -> int:
        """POST ``fields`` to ``url`` form-encoded and signed as Twilio signs."""
        body = urlencode(fields).encode()
        headers = twilio_sms.sign(url, body, self.auth_token) | {
            "Content-Type": "application/x-www-form-urlencoded"
        }
        return httpx.post(url, content=body, headers=headers, timeout=10).status_code

    def inbound(self, url: str, sender: str, text: str, *, to: str = "+12125550197") -> int:
        with self._lock:
            sid = f"SMin{next(self._ids):030x}"
        return self.post_signed(url, twilio_sms.inbound_message(sid, sender, to, text))


@contextmanager
def serve_fake_twilio(fake: FakeTwilioSms | None = None) -> Iterator[tuple[FakeTwilioSms, str]]:
    fake = fake or FakeTwilioSms()
    with serve_in_thread(fake.app()) as url:
        yield fake, url
