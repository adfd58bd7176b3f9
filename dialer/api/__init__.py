"""HTTP entrypoints: the provider webhook ingress (``dialer api``)."""

from dialer.api.ingress import create_ingress_app, serve_api

__all__ = ["create_ingress_app", "serve_api"]
