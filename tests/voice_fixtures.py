"""Documented payloads of the hosted voice providers, written from their public API docs.

Shared by the contract tests (tests/unit/test_*_contract.py) and the loopback fakes
(tests/integration/fake_voice_providers.py). Each payload carries the fields the
provider's documentation lists for it (see the adapter modules' docstrings for the
pages); values are made up.
"""

from __future__ import annotations

from typing import Any

from dialer.providers.base import PlaceCallRequest

CUSTOMER = "+15551234567"
CALLER_ID = "+15557654321"
KEY = "att:4f8c2d3e-0000-4000-8000-000000000001:1"
ATTEMPT_ID = "9b1d7f0e-0000-4000-8000-00000000000a"
GREETING = "Hi Maria, this is Ana from Acme calling about your appointment."

REQUEST = PlaceCallRequest(
    idempotency_key=KEY,
    agent_id="agent_123",
    to=CUSTOMER,
    from_number=CALLER_ID,
    context={"name": "Maria", "opening_message": GREETING, "plan": "gold"},
    metadata={"attempt_id": ATTEMPT_ID, "campaign_id": "c-1"},
)
OUR_METADATA = {"attempt_id": ATTEMPT_ID, "campaign_id": "c-1", "dialer_idempotency_key": KEY}

# --------------------------------------------------------------------------- Retell

RETELL_REGISTERED: dict[str, Any] = {
    "call_type": "phone_call",
    "call_id": "Jabr9TXYYJHfvl6Syypi88rdAHYHmcq6",
    "agent_id": "agent_123",
    "call_status": "registered",
    "from_number": CALLER_ID,
    "to_number": CUSTOMER,
    "direction": "outbound",
    "metadata": OUR_METADATA,
    "retell_llm_dynamic_variables": {"name": "Maria"},
}
RETELL_ANALYZED: dict[str, Any] = {
    **RETELL_REGISTERED,
    "call_status": "ended",
    "start_timestamp": 1703302407333,
    "end_timestamp": 1703302428855,
    "duration_ms": 21522,
    "disconnection_reason": "user_hangup",
    "call_cost": {"product_costs": [], "combined_cost": 12.5, "total_duration_seconds": 22},
    "call_analysis": {
        "call_summary": "The customer confirmed the appointment for Monday.",
        "in_voicemail": False,
        "user_sentiment": "Positive",
        "call_successful": True,
        "custom_analysis_data": {"appointment_day": "monday"},
    },
}

# --------------------------------------------------------------------------- Vapi

VAPI_QUEUED: dict[str, Any] = {
    "id": "7420f27a-30fd-4f49-a995-5549ae7cc00d",
    "orgId": "org-1",
    "type": "outboundPhoneCall",
    "status": "queued",
    "assistantId": "agent_123",
    "phoneNumberId": "pn_1",
    "customer": {"number": CUSTOMER},
    "assistantOverrides": {"variableValues": {"name": "Maria"}, "metadata": OUR_METADATA},
    "createdAt": "2025-03-03T15:00:00.000Z",
    "updatedAt": "2025-03-03T15:00:00.000Z",
}
VAPI_END_OF_CALL: dict[str, Any] = {
    "message": {
        "type": "end-of-call-report",
        "timestamp": 1741014129000,
        "endedReason": "customer-ended-call",
        "startedAt": "2025-03-03T15:00:09.000Z",
        "endedAt": "2025-03-03T15:02:09.500Z",
        "durationSeconds": 120.5,
        "cost": 0.1234,
        "analysis": {
            "summary": "The customer confirmed the appointment.",
            "successEvaluation": "true",
            "structuredData": {"sentiment": "positive", "appointment_day": "monday"},
        },
        "call": {**VAPI_QUEUED, "status": "in-progress"},
    }
}
VAPI_RINGING: dict[str, Any] = {
    "message": {
        "type": "status-update",
        "timestamp": 1741014002000,
        "status": "ringing",
        "call": VAPI_QUEUED,
    }
}

# --------------------------------------------------------------------------- Twilio

TWILIO_ACCOUNT = "AC" + "0123456789abcdef" * 2
TWILIO_TOKEN = "twilio-auth-token-for-tests"
TWILIO_CALL_SID = "CA" + "fedcba9876543210" * 2
TWILIO_QUEUED: dict[str, Any] = {
    "sid": TWILIO_CALL_SID,
    "account_sid": TWILIO_ACCOUNT,
    "to": CUSTOMER,
    "from": CALLER_ID,
    "status": "queued",
    "direction": "outbound-api",
    "date_created": "Mon, 03 Mar 2025 15:00:00 +0000",
    "start_time": None,
    "end_time": None,
    "duration": None,
    "price": None,
    "price_unit": "USD",
    "answered_by": None,
}
TWILIO_COMPLETED: dict[str, Any] = {
    **TWILIO_QUEUED,
    "status": "completed",
    "start_time": "Mon, 03 Mar 2025 15:00:09 +0000",
    "end_time": "Mon, 03 Mar 2025 15:02:14 +0000",
    "duration": "125",
    "price": "-0.01300",
    "answered_by": "human",
}
TWILIO_CALLBACK: dict[str, str] = {
    "AccountSid": TWILIO_ACCOUNT,
    "ApiVersion": "2010-04-01",
    "CallSid": TWILIO_CALL_SID,
    "CallStatus": "completed",
    "CallbackSource": "call-progress-events",
    "Direction": "outbound-api",
    "From": CALLER_ID,
    "To": CUSTOMER,
    "CallDuration": "125",
    "SequenceNumber": "3",
    "Timestamp": "Mon, 03 Mar 2025 15:02:14 +0000",
    "AnsweredBy": "human",
}

# --------------------------------------------------------------------------- ElevenLabs

ELEVENLABS_PLACED: dict[str, Any] = {
    "success": True,
    "message": "Success",
    "conversation_id": "conv_01jnq5x8c6e2",
    "callSid": TWILIO_CALL_SID,
}
ELEVENLABS_DONE: dict[str, Any] = {
    "agent_id": "agent_123",
    "conversation_id": "conv_01jnq5x8c6e2",
    "status": "done",
    "transcript": [{"role": "agent", "message": GREETING, "time_in_call_secs": 0}],
    "metadata": {
        "start_time_unix_secs": 1741014009,
        "call_duration_secs": 125,
        "cost": 420,
        "cost_fiat": 0.084,
        "termination_reason": "Call ended by remote party",
        "phone_call": {
            "direction": "outbound",
            "type": "twilio",
            "agent_number": CALLER_ID,
            "external_number": CUSTOMER,
            "call_sid": TWILIO_CALL_SID,
        },
    },
    "analysis": {
        "evaluation_criteria_results": {
            "confirmed": {"criteria_id": "confirmed", "result": "success", "rationale": "Yes."}
        },
        "data_collection_results": {
            "sentiment": {"data_collection_id": "sentiment", "value": "positive", "rationale": "."},
            "appointment_day": {
                "data_collection_id": "appointment_day",
                "value": "monday",
                "rationale": "The customer said Monday.",
            },
        },
        "call_successful": "success",
        "call_success_score": 0.9,
        "transcript_summary": "The customer confirmed the appointment.",
        "call_summary_title": "Appointment confirmed",
    },
    "conversation_initiation_client_data": {
        "dynamic_variables": {"name": "Maria", **OUR_METADATA},
        "user_id": KEY,
    },
}
ELEVENLABS_TRANSCRIPTION_WEBHOOK: dict[str, Any] = {
    "type": "post_call_transcription",
    "event_timestamp": 1741014140,
    "data": ELEVENLABS_DONE,
}
ELEVENLABS_FAILURE_WEBHOOK: dict[str, Any] = {
    "type": "call_initiation_failure",
    "event_timestamp": 1741014030,
    "data": {
        "agent_id": "agent_123",
        "conversation_id": "conv_01jnq5x8c6e2",
        "failure_reason": "busy",
        "metadata": {
            "type": "twilio",
            "body": {"CallSid": TWILIO_CALL_SID, "CallStatus": "busy", "To": CUSTOMER},
        },
    },
}
