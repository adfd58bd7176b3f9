"""SMS and Meta's WhatsApp webhooks through real processes.

Real `dialer sandbox` (the voice provider; every call unanswered), `dialer api`, a
Celery worker and beat on a fast shared clock; SMS goes to a fake Twilio Messaging
server over loopback (tests.integration.fake_twilio_sms), which posts its status
callbacks signed with ``X-Twilio-Signature`` to the api, as Twilio does.

- SMS fallback: after one unanswered call each customer gets the campaign's SMS, and
  its ``delivered`` callback comes back through the ingress and the worker;
- an inbound SMS STOP opts the customer out;
- Meta: the GET handshake answers the challenge; a status signed with
  ``X-Hub-Signature-256`` is stored and applied by the worker.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from sqlalchemy import select

from dialer.processes import process_group
from dialer.providers.meta_webhooks import SIGNATURE_HEADER, meta_signature
from dialer.providers.twilio_sms import WEBHOOK_PATH
from dialer.providers.whatsapp import status_webhook
from models import Customer, Enrollment, Message
from models.session import transaction
from tests.e2e.celery_support import fast_run, wait_for
from tests.integration.fake_twilio_sms import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    FakeTwilioSms,
    serve_fake_twilio,
)
from tests.integration.loopback_support import free_port
from tests.integration.pipeline_support import (
    MONDAY_6_UTC,
    customers_csv,
    rome_phone,
    setup_campaign,
    start,
)

RUN_TIMEOUT_SECONDS = 180
STARTUP_SECONDS = 90
APP_SECRET = "meta_app_" + "s" * 24
VERIFY_TOKEN = "meta_verify_" + "v" * 24
SMS_SENDER = "+12125550197"
NOBODY_ANSWERS = {
    "seed": 3,
    "answer_rate": 0.0,
    "busy_rate": 0.0,
    "voicemail_rate": 0.0,
    "failure_rate": 0.0,
    "no_answer_rate": 1.0,
}


def _up(url: str) -> bool:
    try:
        return httpx.get(url, timeout=0.5).status_code == 200
    except httpx.HTTPError:
        return False


def _sms(url: str) -> list[Message]:
    with transaction(url) as session:
        return list(
            session.scalars(
                select(Message).where(Message.channel == "sms", Message.direction == "outbound")
            )
        )


def _states(url: str) -> dict[str, tuple[str, bool]]:
    with transaction(url) as session:
        rows = session.execute(
            select(Customer.phone, Enrollment.state, Customer.opted_out).join(
                Enrollment, Enrollment.customer_id == Customer.id
            )
        ).all()
    return {str(phone): (str(state), bool(opted)) for phone, state, opted in rows}


def test_sms_fallback_stop_and_metas_signed_webhooks_through_real_processes(
    clean_db: str, redis_url: str, tmp_path: Path
) -> None:
    sandbox_port, api_port = free_port(), free_port()
    sandbox, api = f"http://127.0.0.1:{sandbox_port}", f"http://127.0.0.1:{api_port}"
    stays, leaves = rome_phone(1), rome_phone(2)
    with serve_fake_twilio(FakeTwilioSms(callbacks=True)) as (twilio, twilio_url):
        run = fast_run(
            clean_db,
            redis_url,
            tmp_path,
            MONDAY_6_UTC,
            DIALER_PROVIDER="http",
            DIALER_PROVIDER_BASE_URL=sandbox,
            DIALER_WHATSAPP_BASE_URL=sandbox,
            DIALER_SANDBOX_PORT=str(sandbox_port),
            DIALER_API_PORT=str(api_port),
            DIALER_PUBLIC_WEBHOOK_BASE_URL=api,
            DIALER_PROVIDER_CALLS_PER_SECOND="50",
            DIALER_SIMULATION=json.dumps(NOBODY_ANSWERS),
            DIALER_WEBHOOK_SECRET="whsec_test_" + "w" * 24,
            DIALER_PROVIDER_API_KEY="sk_test_" + "k" * 24,
            DIALER_WHATSAPP_TOKEN="wa_test_" + "t" * 24,
            DIALER_WHATSAPP_APP_SECRET=APP_SECRET,
            DIALER_WHATSAPP_VERIFY_TOKEN=VERIFY_TOKEN,
            DIALER_SMS_BASE_URL=twilio_url,
            DIALER_SMS_ACCOUNT_SID=ACCOUNT_SID,
            DIALER_SMS_AUTH_TOKEN=AUTH_TOKEN,
            DIALER_SMS_FROM_NUMBER="+12125550100",
            DIALER_MAX_CALL_SECONDS="3",
        )
        spec = {
            "fallback_channel": "sms",
            "whatsapp_after_attempts": 1,  # the SMS after the first unanswered call
            "whatsapp_channel": {"name": "SMS", "address": SMS_SENDER},
            "call_attempt_delays": [600, 1200],
        }
        campaign_id = setup_campaign(clean_db, spec, customers_csv([stays, leaves]))
        with process_group(run.env, run.log_dir) as group:
            group.dialer("sandbox", ["sandbox"])
            group.dialer("api", ["api"])
            wait_for(
                lambda: _up(f"{sandbox}/sandbox/health"),
                STARTUP_SECONDS,
                "the sandbox",
                run.log_dir,
            )  # a loaded CI box starts slowly
            wait_for(lambda: _up(f"{api}/healthz"), STARTUP_SECONDS, "the api", run.log_dir)

            # Meta's subscription check, before anything is posted.
            query = {
                "hub.mode": "subscribe",
                "hub.verify_token": VERIFY_TOKEN,
                "hub.challenge": "987654",
            }
            handshake = httpx.get(f"{api}/webhooks/whatsapp", params=query, timeout=5)
            assert (handshake.status_code, handshake.text) == (200, "987654")
            refused = httpx.get(
                f"{api}/webhooks/whatsapp", params=query | {"hub.verify_token": "x"}, timeout=5
            )
            assert refused.status_code == 403

            group.worker(concurrency=2)
            group.beat()
            start(clean_db, campaign_id, run.now())
            wait_for(
                lambda: (
                    {m.status for m in _sms(clean_db)} == {"delivered"} and len(_sms(clean_db)) == 2
                ),
                RUN_TIMEOUT_SECONDS,
                "both fallback SMS to be delivered",
                run.log_dir,
            )
            answers = twilio.inbound(f"{api}{WEBHOOK_PATH}", leaves, "STOP", to=SMS_SENDER)
            assert answers == 200
            wait_for(
                lambda: _states(clean_db)[leaves] == ("opted_out", True),
                RUN_TIMEOUT_SECONDS,
                "the STOP to opt the customer out",
                run.log_dir,
            )

            # A status Meta signs with the app secret, for a WhatsApp message of ours.
            (delivered_sms, *_) = _sms(clean_db)
            with transaction(clean_db) as session:
                session.add(
                    Message(
                        customer_id=delivered_sms.customer_id,
                        campaign_id=campaign_id,
                        channel="whatsapp",
                        direction="outbound",
                        purpose="notice",
                        status="sent",
                        to_address=stays,
                        provider_message_id="wamid.e2e",
                        idempotency_key="wa:e2e",
                    )
                )
            body = json.dumps(
                status_webhook("wamid.e2e", "read", run.now(), stays, phone_number_id="1")
            ).encode()
            forged = httpx.post(
                f"{api}/webhooks/whatsapp",
                content=body,
                headers={SIGNATURE_HEADER: meta_signature(body, "y" * 32)},
                timeout=5,
            )
            assert forged.status_code == 401
            signed = httpx.post(
                f"{api}/webhooks/whatsapp",
                content=body,
                headers={SIGNATURE_HEADER: meta_signature(body, APP_SECRET)},
                timeout=5,
            )
            assert signed.status_code == 200
            wait_for(
                lambda: _whatsapp_status(clean_db) == "read",
                RUN_TIMEOUT_SECONDS,
                "the Meta-signed status to be applied",
                run.log_dir,
            )

    sent = twilio.sent
    assert len(sent) == 2  # one SMS per customer, never a second send
    assert {form["From"] for form in sent} == {SMS_SENDER}
    assert {form["To"] for form in sent} == {stays, leaves}
    assert all(form["StatusCallback"] == f"{api}{WEBHOOK_PATH}" for form in sent)
    assert set(twilio.callback_answers) == {200}
    assert _states(clean_db)[stays][1] is False


def _whatsapp_status(url: str) -> str | None:
    with transaction(url) as session:
        return session.scalar(
            select(Message.status).where(Message.provider_message_id == "wamid.e2e")
        )
