"""Campaign dialer: the domain (policies, services, provider adapters, settings)."""

from dialer.tzdb import pin_tz_database

__version__ = "0.1.0"

# Before any module of the dialer loads a zone: the window policy must read the pinned
# tzdata, not whatever zone files the host carries (see dialer.tzdb).
pin_tz_database()
