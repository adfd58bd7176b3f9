"""One typed settings object for every process (CLI, worker, beat, API).

Read from the environment (prefix ``DIALER_``) and an optional ``.env`` file.
A bad value stops start-up with a message that names the setting.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, time
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from dialer.errors import SettingsError

# The HTTP adapter's connection pool size (dialer.providers.http_voice).
_MAX_PROVIDER_CONNECTIONS = 20
# The process-wide secrets (each registry entry says which of them it uses), and values
# that are public (in this repository's code, examples and deploy files): anyone could
# sign a webhook or call the provider with them.
PROVIDER_SECRETS = (
    "webhook_secret",
    "provider_api_key",
    "whatsapp_token",
    "whatsapp_app_secret",
    "whatsapp_verify_token",
)
# SMS is opt-in: its secret is checked once DIALER_SMS_ACCOUNT_SID turns the channel on.
SMS_ACCOUNT_SID_PATTERN = r"^(AC[0-9a-fA-F]{32})?$"
PUBLIC_SECRET_VALUES = frozenset(
    {"whsec_sandbox", "sk_sandbox", "wa_sandbox", "change-me", "changeme", "secret"}
)
MIN_SECRET_CHARS = 16


class Settings(BaseSettings):
    """Deployment settings. Every field is documented; docs/OPERATIONS.md is generated from them."""

    model_config = SettingsConfigDict(env_prefix="DIALER_", env_file=".env", extra="ignore")

    database_url: str | None = Field(
        default=None,
        description="PostgreSQL URL (postgresql+psycopg://...). Unset: embedded server.",
    )
    redis_url: str | None = Field(
        default=None,
        description="Redis URL (redis://host:port/db). Unset: the embedded Redis is used.",
    )
    home: Path = Field(
        default=Path(".dialer"),
        description="Folder for the embedded servers' data, pid files and logs.",
    )
    legal_window_start: time = Field(
        default=time(8, 0),
        description="Earliest local time any call may start (legal outer bound).",
    )
    legal_window_end: time = Field(
        default=time(21, 0), description="Latest local time a call may start (legal outer bound)."
    )
    clock_speed: float = Field(
        default=1.0,
        gt=0,
        description="Simulated seconds per real second (demo only). 1 means the real clock.",
    )
    clock_anchor_real: datetime | None = Field(
        default=None, description="Real UTC instant at which the simulated clock was anchored."
    )
    clock_anchor_sim: datetime | None = Field(
        default=None, description="Simulated UTC instant that corresponds to clock_anchor_real."
    )
    scan_interval_seconds: float = Field(
        default=2.0, gt=0, le=60, description="How often beat runs the due-scan (real seconds)."
    )
    beat_lock_timeout_seconds: int = Field(
        default=10,
        ge=2,
        le=600,
        description="How long beat's leader lock outlives a beat that died: a standby beat "
        "takes over within about this time.",
    )
    scan_batch_size: int = Field(
        default=500, ge=1, le=10_000, description="Most attempts one campaign claims per tick."
    )
    scan_partitions: int = Field(
        default=1,
        ge=1,
        le=256,
        description="Scan tasks per tick, each over the campaigns whose id hashes to it: "
        "any worker runs them, so more workers scan more campaigns in parallel. A lost "
        "partition task is redone by the next tick.",
    )
    scan_campaigns_per_transaction: int = Field(
        default=500,
        ge=1,
        le=10_000,
        description="Due campaigns one scan transaction locks and claims for at once.",
    )
    max_queued_attempts: int | None = Field(
        default=None,
        ge=1,
        le=1_000_000,
        description="Fleet-wide most attempts claimed and not yet taken by a dispatch. When "
        "the provider's rate limit or the workers are the bottleneck, this keeps the "
        "dispatch queue short, and each tick's claims are shared fairly: accounts first, "
        "then each account's campaigns. About provider_calls_per_second x 2 scan "
        "intervals; unset: no bound (each campaign's concurrency is the only one).",
    )
    account_concurrency: int | None = Field(
        default=None,
        ge=1,
        le=100_000,
        description="Most calls in flight per account, across all of its campaigns "
        "(unset: no account cap).",
    )
    finish_sweep_seconds: float = Field(
        default=300.0,
        ge=10,
        le=86_400,
        description="How often the safety sweep looks for running campaigns with nothing "
        "left to do (campaigns normally finish when their last enrollment closes).",
    )
    dispatch_chunk_size: int = Field(
        default=10,
        ge=1,
        le=1000,
        description="Attempts handed to one dispatch task. A task costs ~15 ms of CPU "
        "whatever its size: with a fast provider, 100-250 amortise it; with a slow one, "
        "small chunks spread the calls over more worker processes.",
    )
    dispatch_max_tries: int = Field(
        default=5,
        ge=1,
        le=50,
        description="Tries to hand one call to the provider before failing it.",
    )
    dispatch_window_margin_seconds: float = Field(
        default=5,
        ge=0,
        le=300,
        description="A call starts only if the contact's window stays open this long after "
        "its request is sent: the provider's placement latency.",
    )
    queued_timeout_seconds: float = Field(
        default=120,
        gt=0,
        description="A claimed attempt whose task never ran is re-sent after this.",
    )
    dispatching_timeout_seconds: float = Field(
        default=120, gt=0, description="A dispatch that never finished is retried after this."
    )
    max_call_seconds: float = Field(
        default=3600, gt=0, description="An in-progress call older than this is reconciled."
    )
    uncertain_placement_deadline_seconds: float = Field(
        default=3 * 3600,
        gt=0,
        description="A call whose placement answer was lost is held `uncertain` and looked "
        "up until this long after it was sent; with no webhook and no trace at the provider "
        "by then it ends failed. Longer than DIALER_MAX_CALL_SECONDS: a placed call has "
        "sent its webhooks by then.",
    )
    message_status_timeout_seconds: float = Field(
        default=6 * 3600,
        gt=0,
        description="A sent WhatsApp message with no delivery status after this is looked "
        "up where the adapter can, else marked `unknown` (a late status still applies).",
    )
    inbox_retry_seconds: float = Field(
        default=60,
        gt=0,
        description="A stored provider event not yet applied is re-applied after this.",
    )
    visibility_timeout_seconds: int = Field(
        default=3600,
        ge=60,
        description="Redis broker visibility timeout; longer than any countdown.",
    )
    webhook_allow_private_urls: bool = Field(
        default=False,
        description="Allow account webhook endpoints on loopback, private or reserved "
        "addresses (tests, the sandbox). Off: such URLs are refused when registered and "
        "again when their host resolves to one at send time.",
    )
    webhook_timeout_seconds: float = Field(
        default=10, gt=0, le=60, description="Total timeout of one webhook POST."
    )
    webhook_max_attempts: int = Field(
        default=8, ge=1, le=50, description="Tries of one webhook delivery before it is dead."
    )
    webhook_backoff_base_seconds: float = Field(
        default=30,
        gt=0,
        description="Wait after a delivery's first failed try; doubled after each next one "
        "(with jitter), up to DIALER_WEBHOOK_BACKOFF_CAP_SECONDS.",
    )
    webhook_backoff_cap_seconds: float = Field(
        default=6 * 3600, gt=0, description="Longest wait between two tries of one delivery."
    )
    webhook_disable_after_failures: int = Field(
        default=20,
        ge=1,
        le=1000,
        description="Consecutive failed tries after which an endpoint is disabled (its "
        "account enables it again with the API or `dialer webhooks enable`).",
    )
    webhook_batch_size: int = Field(
        default=50, ge=1, le=1000, description="Webhook deliveries one beat tick sends."
    )
    task_time_limit_seconds: int = Field(
        default=300, ge=10, description="Hard time limit of one task."
    )
    worker_concurrency: int = Field(default=2, ge=1, le=64, description="Worker processes.")
    gc_threshold: int = Field(
        default=20_000,
        ge=0,
        description="Worker and beat processes: allocations between two young-generation "
        "garbage collections (Python's default is 700, which spends ~15 % of a worker's CPU "
        "collecting ORM objects); the objects loaded at start are also frozen out of "
        "collection. 0 keeps Python's defaults.",
    )
    provider: str = Field(
        default="simulated",
        description="Voice/message adapters: a name in the provider registry "
        "(dialer.providers.catalog): simulated (in-process), http (seed 004 API), "
        "vapi, retell, twilio or elevenlabs (settings DIALER_<NAME>_*). "
        "An unknown name stops start-up.",
    )
    failover_refusals: int = Field(
        default=5,
        ge=1,
        le=10_000,
        description="Failover: more than this many refusals of a voice provider that placed "
        "no call (429, 5xx, connection refused) within DIALER_FAILOVER_WINDOW_SECONDS send "
        "new placements of agents with a fallback_provider to the fallback.",
    )
    failover_window_seconds: float = Field(
        default=60,
        gt=0,
        le=3600,
        description="Failover: the sliding window refusals are counted in.",
    )
    failover_cooldown_seconds: float = Field(
        default=60,
        gt=0,
        le=86_400,
        description="Failover: how long the fallback takes new placements before one probe "
        "placement tries the primary again (a success switches back, a refusal waits again).",
    )
    failover_probe_seconds: float = Field(
        default=30,
        gt=0,
        le=3600,
        description="Failover: a probe whose answer never came frees the primary for another "
        "probe after this.",
    )
    provider_base_url: str = Field(
        default="http://127.0.0.1:8700",
        description="Base URL of the seed 004 voice API (the sandbox server by default).",
    )
    provider_api_key: SecretStr = Field(
        default=SecretStr("sk_sandbox"),
        description="API key (sk_...) sent as Bearer token. A real provider refuses the "
        "sandbox default and keys under 16 characters.",
    )
    provider_connect_timeout_seconds: float = Field(
        default=3.0, gt=0, description="Connect timeout of provider HTTP requests."
    )
    provider_read_timeout_seconds: float = Field(
        default=10.0, gt=0, description="Read timeout of provider HTTP requests."
    )
    provider_parallel_requests: int = Field(
        default=8,
        ge=1,
        le=_MAX_PROVIDER_CONNECTIONS,
        description="Call requests one worker process keeps in flight while placing a chunk.",
    )
    provider_calls_per_second: float = Field(
        default=20.0,
        gt=0,
        description="Calls per second the provider accepts (token bucket shared in Redis).",
    )
    webhook_secret: SecretStr = Field(
        default=SecretStr("whsec_sandbox"),
        description="HMAC-SHA256 secret of provider webhooks (call and WhatsApp events). A real "
        "provider refuses the sandbox default and secrets under 16 characters.",
    )
    webhook_tolerance_seconds: int = Field(
        default=300, ge=1, description="Oldest webhook timestamp accepted (replay protection)."
    )
    public_webhook_base_url: str = Field(
        default="http://127.0.0.1:8600",
        description="Where providers reach the ingress (`dialer api`), e.g. https://hooks.example.",
    )
    api_host: str = Field(default="127.0.0.1", description="`dialer api` listen address.")
    api_port: int = Field(default=8600, ge=1, le=65535, description="`dialer api` listen port.")
    ui_session_secret: SecretStr = Field(
        default=SecretStr(""),
        description="HMAC key signing the dashboard's (/ui) session cookies and CSRF tokens. "
        "Unset: a random key per process (sessions end when it restarts), allowed only with "
        "the in-process simulated provider; with a real provider `dialer api` refuses to "
        "start on an unset, public or short (< 16 characters) value.",
    )
    ui_session_hours: int = Field(
        default=12, ge=1, le=24 * 30, description="How long a dashboard sign-in lasts."
    )
    sandbox_port: int = Field(
        default=8700, ge=1, le=65535, description="`dialer sandbox` listen port."
    )
    whatsapp_base_url: str = Field(
        default="http://127.0.0.1:8700",
        description="Base URL of the WhatsApp Cloud-style API (the sandbox server by default).",
    )
    whatsapp_phone_number_id: str = Field(
        default="sandbox-sender",
        description="WhatsApp Cloud API sender (phone number id) messages are sent from.",
    )
    whatsapp_api_version: str = Field(default="v21.0", description="WhatsApp Cloud API version.")
    whatsapp_token: SecretStr = Field(
        default=SecretStr("wa_sandbox"),
        description="WhatsApp API access token (Bearer). A real provider refuses the "
        "sandbox default and tokens under 16 characters.",
    )
    whatsapp_app_secret: SecretStr = Field(
        default=SecretStr(""),
        description="Meta app secret: the key of the `X-Hub-Signature-256` HMAC-SHA256 Meta "
        "signs WhatsApp webhooks with (App settings > Basic). No default: a real provider "
        "refuses an empty or short one.",
    )
    whatsapp_verify_token: SecretStr = Field(
        default=SecretStr(""),
        description="The Verify Token typed into Meta's webhook console; Meta's GET handshake "
        "(`hub.verify_token`) must match it. No default: a real provider refuses an empty or "
        "short one.",
    )
    sms_base_url: str = Field(
        default="https://api.twilio.com",
        description="Base URL of the Twilio REST API SMS is sent through (a fake one in tests).",
    )
    sms_account_sid: str = Field(
        default="",
        pattern=SMS_ACCOUNT_SID_PATTERN,
        description="Twilio Account SID (AC...) of the SMS channel; empty: SMS is off "
        "(a campaign's SMS fails as 'sms_not_configured').",
    )
    sms_auth_token: SecretStr = Field(
        default=SecretStr(""),
        description="Twilio auth token: the Basic-auth password of sends and the key of "
        "`X-Twilio-Signature` on SMS webhooks. Required (16+ characters) once "
        "DIALER_SMS_ACCOUNT_SID is set.",
    )
    sms_from_number: str = Field(
        default="",
        max_length=32,
        description="Default SMS sender (E.164) when a campaign's SMS channel names none.",
    )
    sms_messaging_service_sid: str = Field(
        default="",
        pattern=r"^(MG[0-9a-fA-F]{32})?$",
        description="Twilio Messaging Service SID (MG...); when set it is sent instead of "
        "a From number (Twilio picks the sender from the service's pool).",
    )
    smtp_host: str = Field(default="127.0.0.1", description="SMTP server for email.")
    smtp_port: int = Field(default=8025, ge=1, le=65535, description="SMTP server port.")
    smtp_username: str | None = Field(default=None, description="SMTP login, if required.")
    smtp_password: SecretStr | None = Field(default=None, description="SMTP password.")
    smtp_starttls: bool = Field(default=False, description="Use STARTTLS on the SMTP connection.")
    email_from: str = Field(
        default="dialer@example.com", description="Sender address of campaign emails."
    )
    simulation: dict[str, Any] = Field(
        default_factory=dict,
        description='Simulated provider profile as JSON, e.g. {"seed": 7, "answer_rate": 0.5}.',
    )
    simulation_namespace: str = Field(
        default="default", description="Redis key namespace of the simulated provider."
    )
    log_format: str = Field(
        default="auto", description="auto (pretty on a terminal, JSON otherwise), json or console."
    )
    log_level: str = Field(default="INFO", description="Minimum log level.")
    metrics_host: str = Field(
        default="127.0.0.1",
        description="Listen address of the Prometheus endpoints of `dialer api` and workers.",
    )
    api_metrics_port: int = Field(
        default=9464,
        ge=0,
        le=65535,
        description="Port of `dialer api`'s Prometheus endpoint (its own samples and the "
        "campaign gauges); 0 turns it off.",
    )
    worker_metrics_port: int = Field(
        default=9465,
        ge=0,
        le=65535,
        description="Port of a worker's Prometheus endpoint (the sum of its pool "
        "processes); 0 turns it off. Two workers on one host need two ports.",
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        description="Bearer token the Prometheus endpoints of `dialer api` and workers "
        "require (Authorization: Bearer ...). Unset, with no metrics_user: open.",
    )
    metrics_user: str | None = Field(
        default=None,
        description="Basic-auth user the Prometheus endpoints of `dialer api` and workers "
        "require (with metrics_password).",
    )
    metrics_password: SecretStr | None = Field(
        default=None, description="Basic-auth password of metrics_user."
    )
    sentry_dsn: SecretStr | None = Field(
        default=None,
        description="Sentry DSN: error reports (and beat monitoring from the Celery "
        "processes) go there, personal data masked. Unset: Sentry is off.",
    )
    sentry_environment: str | None = Field(
        default=None, max_length=64, description="Sentry's environment tag (e.g. production)."
    )
    sentry_traces_sample_rate: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="Share of transactions Sentry traces (0: errors only).",
    )
    otel_enabled: bool = Field(
        default=False,
        description="OpenTelemetry tracing of `dialer api`, workers and beat (webhook -> "
        "apply, scan -> dispatch -> provider request), exported over OTLP/HTTP, personal "
        "data masked. Off: no tracer is installed.",
    )
    otel_exporter_otlp_endpoint: str | None = Field(
        default=None,
        description="Base URL of the OTLP/HTTP collector (e.g. http://otel-collector:4318; "
        "spans go to its /v1/traces). Unset: OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT, else "
        "http://localhost:4318.",
    )
    otel_service_name: str | None = Field(
        default=None,
        max_length=128,
        description="The traces' service.name. Unset: OTEL_SERVICE_NAME, else dialer-api "
        "or dialer-celery by process.",
    )
    otel_traces_sample_ratio: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="Share of new traces kept (a task keeps its publisher's choice). "
        "Unset: OTEL_TRACES_SAMPLER(_ARG), else every trace.",
    )
    flower_host: str = Field(default="127.0.0.1", description="`dialer flower` listen address.")
    flower_port: int = Field(
        default=5555, ge=1, le=65535, description="`dialer flower` listen port."
    )
    flower_user: str = Field(default="flower", description="User name of Flower's HTTP basic auth.")
    flower_password: SecretStr | None = Field(
        default=None,
        description="Password of Flower's HTTP basic auth; `dialer flower` refuses to start "
        "without one. It also guards Flower's /metrics.",
    )
    flower_public_healthcheck: bool = Field(
        default=True,
        description="Flower's /healthcheck (it answers only OK) stays open for liveness "
        "probes; false puts it behind the basic auth too.",
    )

    @field_validator("log_format")
    @classmethod
    def _known_log_format(cls, value: str) -> str:
        if value not in {"auto", "json", "console"}:
            raise ValueError("must be one of auto, json, console")
        return value

    @model_validator(mode="after")
    def _legal_window_is_a_window(self) -> Settings:
        if self.legal_window_start >= self.legal_window_end:
            raise ValueError("legal_window_start must be before legal_window_end")
        if (self.clock_anchor_real is None) != (self.clock_anchor_sim is None):
            raise ValueError("clock_anchor_real and clock_anchor_sim must be set together")
        return self

    @model_validator(mode="after")
    def _uncertain_deadline_outlasts_a_call(self) -> Settings:
        if self.uncertain_placement_deadline_seconds <= self.max_call_seconds:
            raise ValueError(
                "uncertain_placement_deadline_seconds must be longer than max_call_seconds: "
                "a call still on the line would be taken for one never placed"
            )
        return self

    @model_validator(mode="after")
    def _metrics_credentials_are_whole(self) -> Settings:
        if bool(self.metrics_user) != bool(self.metrics_password):
            raise ValueError("metrics_user and metrics_password must be set together")
        if self.metrics_user and ":" in self.metrics_user:
            raise ValueError("metrics_user must not contain ':'")
        return self

    def sms_problems(self) -> list[str]:
        """SMS turned on (an account SID) needs its token and a sender."""
        if not self.sms_account_sid:
            return []
        problems = []
        if problem := _weak_secret(self.sms_auth_token.get_secret_value()):
            problems.append(f"DIALER_SMS_AUTH_TOKEN: {problem}")
        if not (self.sms_from_number or self.sms_messaging_service_sid):
            problems.append(
                "DIALER_SMS_FROM_NUMBER: set it or DIALER_SMS_MESSAGING_SERVICE_SID to send SMS"
            )
        return problems


def secret_problems(settings: Settings, names: Iterable[str]) -> list[str]:
    """``DIALER_<NAME>: why`` for each named secret too weak to guard a real provider.

    Which secrets a provider really uses is said by its registry entry
    (``dialer.providers.registry``: its ``secrets`` and those of the channels it sends
    through); the composition root checks them at start-up. A value is never echoed.
    """
    return [
        f"DIALER_{name.upper()}: {problem}"
        for name in names
        if (problem := _weak_secret(getattr(settings, name).get_secret_value()))
    ]


def ui_secret_problem(settings: Settings) -> str | None:
    """``DIALER_UI_SESSION_SECRET: why`` when it may not sign sessions beside a real provider."""
    value = settings.ui_session_secret.get_secret_value()
    if not value.strip():
        return "DIALER_UI_SESSION_SECRET: is not set; set a random secret of your own"
    problem = _weak_secret(value)
    return f"DIALER_UI_SESSION_SECRET: {problem}" if problem else None


def _weak_secret(value: str) -> str | None:
    """Why ``value`` may not guard a real provider, or None when it may."""
    if not value.strip():
        return "is not set (it has no default); set the provider's value"
    if value.strip().lower() in PUBLIC_SECRET_VALUES or "sandbox" in value.lower():
        return "is a public sandbox default; set a secret of your own"
    if len(value) < MIN_SECRET_CHARS:
        return f"is shorter than {MIN_SECRET_CHARS} characters"
    return None


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment, raising SettingsError that names each bad setting."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise SettingsError.from_validation(exc) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return load_settings()
