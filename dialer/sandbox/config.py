"""What the sandbox does: who may call, how fast time runs, and which faults to inject."""

from __future__ import annotations

from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from dialer.providers.simulation import SimulationProfile


class FaultConfig(BaseModel):
    """Faults to inject; all off by default. Replaceable at runtime (``POST /sandbox/faults``).

    The four request faults are exclusive: one draw per POST /v1/calls picks at most
    one, so their rates must add up to at most 1.
    """

    model_config = ConfigDict(extra="forbid")

    rate_429: float = Field(default=0.0, ge=0, le=1, description="Answer 429 with Retry-After.")
    retry_after_seconds: int = Field(default=1, ge=0, description="Retry-After sent with a 429.")
    retry_after_format: Literal["seconds", "http_date"] = Field(
        default="seconds", description="Send Retry-After as delay-seconds or as an HTTP date."
    )
    rate_5xx: float = Field(default=0.0, ge=0, le=1, description="Answer 503, nothing created.")
    rate_timeout: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="Hold the request hang_seconds, create nothing, then answer 504.",
    )
    rate_lost_response: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="Create the call, then hold the response hang_seconds (past the client's "
        "read timeout): the client must retry with the same Idempotency-Key.",
    )
    scripted: list[Literal["429", "5xx", "timeout", "lost_response"]] = Field(
        default_factory=list,
        max_length=100,
        description="Faults of the first create requests, in order, before the random draws "
        "(a short run meets each fault at least once).",
    )
    hang_seconds: float = Field(
        default=15.0, ge=0, description="How long a timed-out request is held (real seconds)."
    )
    drop_webhook_rate: float = Field(
        default=0.0, ge=0, le=1, description="Never deliver this share of webhooks."
    )
    duplicate_webhook_rate: float = Field(
        default=0.0, ge=0, le=1, description="Deliver a call's final event twice."
    )
    reorder_webhook_rate: float = Field(
        default=0.0, ge=0, le=1, description="Deliver a call's ringing event after its final one."
    )
    webhook_delay_seconds: tuple[float, float] = Field(
        default=(0.0, 0.0),
        description="Extra real delay (low, high) drawn for every webhook delivery.",
    )

    @field_validator("webhook_delay_seconds")
    @classmethod
    def _delay_is_a_range(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not 0 <= value[0] <= value[1]:
            raise ValueError("must be (low, high) with 0 <= low <= high")
        return value

    @model_validator(mode="after")
    def _request_faults_fit_one_draw(self) -> FaultConfig:
        total = self.rate_429 + self.rate_5xx + self.rate_timeout + self.rate_lost_response
        if total > 1.0 + 1e-9:
            raise ValueError(
                "rate_429 + rate_5xx + rate_timeout + rate_lost_response must be at most 1"
            )
        return self


# The provider APIs the sandbox can speak (`dialer sandbox --flavor`), one module each.
FlavorName = Literal["seed004", "vapi", "retell", "twilio", "elevenlabs"]
FLAVOR_NAMES: Final[tuple[str, ...]] = ("seed004", "vapi", "retell", "twilio", "elevenlabs")


class SandboxConfig(BaseModel):
    """The sandbox provider's start-up configuration."""

    model_config = ConfigDict(extra="forbid")

    flavor: FlavorName = Field(
        default="seed004", description="Which provider's API, webhooks and signatures to speak."
    )
    api_key: str = Field(
        default="sk_sandbox",
        description="The credential clients must send: a Bearer key (seed 004, Vapi, Retell),"
        " the xi-api-key (ElevenLabs) or user:password of Basic auth (Twilio).",
    )
    webhook_secret: str = Field(
        default="whsec_sandbox", description="HMAC secret webhooks are signed with."
    )
    default_webhook_url: str | None = Field(
        default=None,
        description="The agents' webhook_url, used when a call names none; None: no webhooks.",
    )
    agents: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Outbound agents and their numbers; empty accepts any agent and number.",
    )
    time_scale: float = Field(
        default=1.0, gt=0, description="Simulated seconds per real second (1000: ~0.2 s calls)."
    )
    simulation: dict[str, Any] = Field(
        default_factory=dict,
        description="Call outcomes and timings (SimulationProfile fields), e.g. answer_rate.",
    )
    seed: int = Field(default=0, description="Seed of the fault draws.")
    faults: FaultConfig = Field(default_factory=FaultConfig)
    webhook_max_tries: int = Field(
        default=3, ge=1, le=20, description="Deliveries of one webhook before giving up."
    )
    webhook_retry_seconds: float = Field(
        default=0.5, ge=0, description="First pause between tries (doubles each time)."
    )
    webhook_timeout_seconds: float = Field(
        default=5.0, gt=0, description="Timeout of one webhook delivery."
    )

    @model_validator(mode="after")
    def _looks_like_an_api_key(self) -> SandboxConfig:
        if self.flavor == "seed004" and not self.api_key.startswith("sk_"):
            raise ValueError("api_key: must start with sk_ (seed 004 API keys do)")
        if self.flavor == "twilio" and ":" not in self.api_key:
            raise ValueError("api_key: must be user:password (Twilio's Basic auth)")
        return self

    @field_validator("simulation")
    @classmethod
    def _simulation_is_a_profile(cls, value: dict[str, Any]) -> dict[str, Any]:
        SimulationProfile.from_mapping(value)  # raises ValueError naming the bad setting
        return value

    def profile(self) -> SimulationProfile:
        return SimulationProfile.from_mapping(self.simulation)
