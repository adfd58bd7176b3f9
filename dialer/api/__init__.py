"""HTTP entrypoints: the control API and the provider webhook ingress (``dialer api``)."""

from dialer.api.app import create_app, serve_app, serve_metrics
from dialer.api.ingress import create_ingress_app

__all__ = ["create_app", "create_ingress_app", "serve_app", "serve_metrics"]
