"""A runnable stand-in for the voice-AI providers, for tests, the demo and load tests.

Flavours (``--flavor``), one module each on a shared engine: ``seed004`` (the seed
004 API), ``vapi``, ``retell``, ``twilio``, ``elevenlabs``; ``flavor`` (what a
flavour brings: shapes, signer, credentials), ``flavors`` (by name), ``engine``
(faults, one ledger entry, webhooks: what every create shares), ``calls`` (reading
a planned call). Shared: ``config`` (SandboxConfig, FaultConfig), ``admin``
(/sandbox/ledger, /sandbox/faults), ``ledger`` (calls per idempotency key),
``webhooks`` (signed background delivery), ``faults`` (seeded fault draws), ``state``
(what routers share), ``whatsapp`` (the Cloud-style channel), ``app`` (create_app,
serve, run_sandbox), ``testing`` (serve in a thread on a free port). State lives in
memory: run one process.
"""

from dialer.sandbox.app import create_app, run_sandbox, serve
from dialer.sandbox.config import FLAVOR_NAMES, FaultConfig, SandboxConfig

__all__ = ["FLAVOR_NAMES", "FaultConfig", "SandboxConfig", "create_app", "run_sandbox", "serve"]
