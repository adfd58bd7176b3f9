"""The commands that run a process: ``worker``, ``beat``, ``api``, ``sandbox`` and ``demo``.

Celery, FastAPI and the demo are imported inside the commands, so the other commands
start without them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from dialer.cli.support import console
from dialer.cli.support import fail as _fail
from dialer.cli.support import runtime as _runtime
from dialer.clock import utcnow
from dialer.settings import get_settings


def worker_cmd(
    queues: Annotated[
        str, typer.Option(help="Queues to consume.")
    ] = "scan,dispatch,results,messages,events",
    concurrency: Annotated[int | None, typer.Option(help="Processes (default: settings).")] = None,
) -> None:
    """Run a Celery worker with the project's settings."""
    from tasks.app import app as celery_app

    argv = ["worker", "-Q", queues, "--loglevel", "INFO"]
    if concurrency:
        argv += ["-c", str(concurrency)]
    celery_app.worker_main(argv)


def beat_cmd() -> None:
    """Run Celery beat (the due-scan, relay, reaper). Run exactly one."""
    from tasks.app import app as celery_app

    schedule = Path(get_settings().home) / "celerybeat-schedule"
    schedule.parent.mkdir(parents=True, exist_ok=True)
    celery_app.start(["beat", "--loglevel", "INFO", "-s", str(schedule)])


def api_cmd() -> None:
    """Serve the control API and the webhook ingress on api_host:api_port."""
    from dialer.api import create_app, serve_app, serve_metrics
    from dialer.composition.providers import check_ui_settings
    from dialer.composition.sentry import init_sentry
    from dialer.composition.tracing import init_tracing, instrument_fastapi

    runtime = _runtime()
    check_ui_settings(runtime.settings)
    # Before tasks.app is imported: this process's traces are the api's; tasks.app only
    # adds the Celery instrumentation, which carries a webhook's trace to its apply task.
    init_tracing(runtime.settings, "api")
    from tasks.pipeline import apply_event

    init_sentry(runtime.settings, "api")
    app_ = create_app(
        runtime.settings,
        runtime.session,
        enqueue_apply=lambda inbox_id: apply_event.delay(str(inbox_id)),
        readiness=runtime.readiness_checks(),
    )
    instrument_fastapi(app_)
    serve_metrics(
        runtime.settings, runtime.session, lambda: utcnow(runtime.settings), runtime.redis_url
    )
    serve_app(app_, runtime.settings)


def sandbox_cmd(
    faults: Annotated[
        str | None,
        typer.Option(help='Fault knobs as JSON, e.g. \'{"rate_5xx": 0.1, "rate_429": 0.05}\'.'),
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: settings.sandbox_port).")] = None,
    flavor: Annotated[
        str,
        typer.Option(
            help="Which provider's API to speak: seed004, vapi, retell, twilio or elevenlabs "
            "(credentials from that provider's DIALER_<NAME>_* settings)."
        ),
    ] = "seed004",
) -> None:
    """Serve the sandbox provider (a voice API flavour + WhatsApp Cloud-style) for tests/demos."""
    from dialer.sandbox import FLAVOR_NAMES, run_sandbox

    if flavor not in FLAVOR_NAMES:
        raise _fail(f"--flavor: {flavor!r} is not one of {', '.join(FLAVOR_NAMES)}")
    settings = get_settings()
    try:
        overrides = {"faults": json.loads(faults)} if faults else None
    except json.JSONDecodeError as exc:
        raise _fail(f"--faults is not JSON: {exc}") from None
    run_sandbox(settings, port=port, overrides=overrides, flavor=flavor)


def demo_cmd(
    keep_running: Annotated[bool, typer.Option(help="Leave the embedded servers running.")] = False,
    via_sandbox: Annotated[
        bool,
        typer.Option(
            help="Run through the real channels: HTTP adapters, `dialer sandbox` (with some "
            "5xx/429/dropped webhooks) and signed webhooks into `dialer api`."
        ),
    ] = False,
    flavor: Annotated[
        str,
        typer.Option(
            help="With --via-sandbox: the provider the sandbox plays and the dialer talks to "
            "(seed004, vapi, retell, twilio, elevenlabs)."
        ),
    ] = "seed004",
) -> None:
    """Run the example campaign on the embedded servers with real worker and beat processes."""
    from dialer.demo import run_demo
    from dialer.sandbox import FLAVOR_NAMES

    if flavor not in FLAVOR_NAMES:
        raise _fail(f"--flavor: {flavor!r} is not one of {', '.join(FLAVOR_NAMES)}")
    code = run_demo(console, keep_running=keep_running, via_sandbox=via_sandbox, flavor=flavor)
    sys.exit(code)
