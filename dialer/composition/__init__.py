"""The composition root: the one place a process is wired, for every entry point.

``bootstrap`` (runtime): settings checked against the provider registry, logging,
the servers (embedded or configured), the unit of work. ``build_providers``
(providers): the adapters DIALER_PROVIDER names, from the registry; ``build_fleet``: every
voice provider agents name, as one routing ``VoiceFleet`` with failover. ``worker``
(worker): a Celery worker's parts, built once per process. The CLI, `dialer api`,
the demo and the Celery app (tasks) all start here; nothing below imports it.
"""

from dialer.composition.providers import (
    AgentNumbers,
    build_fleet,
    build_providers,
    check_provider_settings,
    check_providers_in_use,
)
from dialer.composition.runtime import Runtime, bootstrap
from dialer.composition.worker import Worker, worker

__all__ = [
    "AgentNumbers",
    "Runtime",
    "Worker",
    "bootstrap",
    "build_fleet",
    "build_providers",
    "check_provider_settings",
    "check_providers_in_use",
    "worker",
]
