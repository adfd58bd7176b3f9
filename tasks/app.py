"""The Celery app: Redis broker, at-least-once settings, named queues, the beat schedule.

GUIDE rule 6: late acks, reject on worker lost, prefetch 1, and no countdown longer
than the broker's visibility timeout (time lives in the database, not in ETAs).
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from kombu.entity import Queue
from opentelemetry.instrumentation.celery import CeleryInstrumentor
from sentry_sdk.integrations.celery import CeleryIntegration

from dialer.composition import worker
from dialer.composition.queues import QUEUES
from dialer.composition.sentry import init_sentry
from dialer.composition.tracing import init_tracing
from dialer.settings import Settings

BEAT_KEY_PREFIX = "dialer:beat"
BEAT_LOCK_KEY = f"{BEAT_KEY_PREFIX}:lock"
# A standby beat retries the lock, and the leader renews it, at least this often.
BEAT_MAX_LOOP_SECONDS = 1.0
ROUTES = {
    "dialer.scan": "scan",
    "dialer.scan_partition": "scan",
    "dialer.finish_sweep": "scan",
    "dialer.reap": "scan",
    "dialer.relay_outbox": "scan",
    "dialer.finish_campaigns": "scan",
    "dialer.dispatch": "dispatch",
    "dialer.pump_simulated_events": "results",
    "dialer.apply_event": "results",
    "dialer.send_messages": "messages",
    "dialer.deliver_webhooks": "messages",
    "dialer.campaign_event": "events",
    "dialer.campaign.start": "events",
}


def beat_schedule(cfg: Settings) -> dict[str, Any]:
    tick = cfg.scan_interval_seconds
    # A tick that waited longer than one interval is stale: the next one does its work.
    every = {"options": {"expires": max(tick, 1.0)}}
    return {
        "scan": {"task": "dialer.scan", "schedule": tick, **every},
        "relay-outbox": {"task": "dialer.relay_outbox", "schedule": tick, **every},
        "pump-simulated-events": {
            "task": "dialer.pump_simulated_events",
            "schedule": tick,
            **every,
        },
        "send-messages": {"task": "dialer.send_messages", "schedule": tick, **every},
        "deliver-webhooks": {"task": "dialer.deliver_webhooks", "schedule": tick, **every},
        "finish-campaigns": {"task": "dialer.finish_campaigns", "schedule": tick * 2, **every},
        "reap": {"task": "dialer.reap", "schedule": max(tick * 5, 5.0), **every},
        "finish-sweep": {
            "task": "dialer.finish_sweep",
            "schedule": cfg.finish_sweep_seconds,
            "options": {"expires": cfg.finish_sweep_seconds},
        },
    }


def configure(app: Celery, cfg: Settings, broker_url: str) -> None:
    app.conf.update(
        broker_url=broker_url,
        broker_transport_options={"visibility_timeout": cfg.visibility_timeout_seconds},
        broker_connection_retry_on_startup=True,
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_time_limit=cfg.task_time_limit_seconds,
        task_soft_time_limit=max(cfg.task_time_limit_seconds - 10, 5),
        # Each queue on its own routing key: by default all would share the "scan" key.
        task_queues=[Queue(name, routing_key=name) for name in QUEUES],
        task_default_queue="scan",
        task_routes=ROUTES,
        task_serializer="json",
        accept_content=["json"],
        worker_send_task_events=True,  # Flower sees every task
        task_send_sent_event=True,
        worker_concurrency=cfg.worker_concurrency,
        beat_schedule=beat_schedule(cfg),
        # Beat high availability: any number of beats may run; the one holding the
        # lock in Redis schedules, the others wait for it. A killed leader's lock
        # expires after beat_lock_timeout_seconds and a standby takes over. The claim
        # is safe with two beats anyway (GUIDE rule 1): the lock saves duplicate work.
        beat_scheduler="tasks.beat:ResilientRedBeatScheduler",
        redbeat_redis_url=broker_url,
        redbeat_key_prefix=BEAT_KEY_PREFIX,
        redbeat_lock_key=BEAT_LOCK_KEY,
        redbeat_redis_options={"socket_timeout": 10},
        redbeat_lock_timeout=cfg.beat_lock_timeout_seconds,
        beat_max_loop_interval=BEAT_MAX_LOOP_SECONDS,
        timezone="UTC",
        enable_utc=True,
    )


app = Celery("dialer", include=["tasks.pipeline"])
_worker = worker()
configure(app, _worker.runtime.settings, _worker.runtime.redis_url)
# Workers report task errors; the beat process reports each schedule entry as a cron
# monitor (a beat that stops ticking shows as missed check-ins). Off without a DSN.
init_sentry(_worker.runtime.settings, "celery", [CeleryIntegration(monitor_beat_tasks=True)])
# Traces: a task runs in the trace of whoever published it (task headers). In `dialer
# api` tracing was started first, and this only adds the Celery instrumentation. Off
# unless DIALER_OTEL_ENABLED.
init_tracing(_worker.runtime.settings, "celery", instrumentors=[CeleryInstrumentor()])

# Signal handlers: worker metrics and per-task log context (after the app exists).
import tasks.exit_status  # noqa: E402
import tasks.observability  # noqa: E402,F401
