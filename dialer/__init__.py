"""Campaign dialer: the domain (policies, services, provider adapters, settings)."""

__version__ = "0.1.0"
