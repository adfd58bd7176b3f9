"""The simulated provider: a voice-AI provider and WhatsApp/email sender for demos and tests.

Split by idea: ``profile`` (how the world behaves), ``outcomes`` (what a call or
message will do, drawn once from the seed and the idempotency key), ``deliveries``
(when its webhook bodies fall due), ``store`` (Redis or memory) and ``provider``
(the adapters). The names below are the public API, used by the wiring, the
scheduler's in-process driver and the sandbox; the event format is
dialer.providers.events.
"""

from dialer.providers.simulation.deliveries import Delivery, call_deliveries
from dialer.providers.simulation.outcomes import (
    CALLBACK_REPLY,
    STOP_REPLY,
    THANKS_REPLY,
    CallPlan,
    EventFaults,
    draw_call_plan,
    is_unreachable_number,
)
from dialer.providers.simulation.profile import SimulationProfile
from dialer.providers.simulation.provider import (
    PROVIDER_NAME,
    SimulatedMessageProvider,
    SimulatedVoiceProvider,
    build_simulated_providers,
    in_memory_providers,
    simulated_providers,
)
from dialer.providers.simulation.store import (
    MemorySimulatorStore,
    RedisSimulatorStore,
    SimulatorStore,
)

__all__ = [
    "CALLBACK_REPLY",
    "PROVIDER_NAME",
    "STOP_REPLY",
    "THANKS_REPLY",
    "CallPlan",
    "Delivery",
    "EventFaults",
    "MemorySimulatorStore",
    "RedisSimulatorStore",
    "SimulatedMessageProvider",
    "SimulatedVoiceProvider",
    "SimulationProfile",
    "SimulatorStore",
    "build_simulated_providers",
    "call_deliveries",
    "draw_call_plan",
    "in_memory_providers",
    "is_unreachable_number",
    "simulated_providers",
]
