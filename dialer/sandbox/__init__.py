"""A runnable stand-in for the seed 004 voice-AI provider, for tests, the demo and load tests.

Modules: ``config`` (SandboxConfig, FaultConfig), ``voice`` (the /v1/calls router),
``admin`` (/sandbox/ledger, /sandbox/faults), ``ledger`` (calls per idempotency key),
``webhooks`` (signed background delivery), ``faults`` (seeded fault draws), ``state``
(what routers share), ``app`` (create_app, serve, run_sandbox), ``testing`` (serve in
a thread on a free port). State lives in memory: run one process.
"""

from dialer.sandbox.app import create_app, run_sandbox, serve
from dialer.sandbox.config import FaultConfig, SandboxConfig

__all__ = ["FaultConfig", "SandboxConfig", "create_app", "run_sandbox", "serve"]
