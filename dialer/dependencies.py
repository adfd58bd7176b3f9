"""The shapes of what the composition root injects: the clocks and the unit of work.

Declared once so a clock means one thing everywhere: ``Clock`` answers an aware UTC
datetime (``dialer.clock.utcnow`` and its stand-ins), ``UnixClock`` answers seconds since
the epoch (rate-limit buckets and webhook timestamps count in those).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime

from sqlalchemy.orm import Session

Clock = Callable[[], datetime]
UnixClock = Callable[[], float]
# One transaction: committed when the block ends, rolled back on error.
UnitOfWork = Callable[[], AbstractContextManager[Session]]
