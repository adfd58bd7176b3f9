"""The flavours `dialer sandbox --flavor` knows, by name (one module each)."""

from __future__ import annotations

from typing import Final

from dialer.sandbox import elevenlabs, retell, seed004, twilio, vapi
from dialer.sandbox.flavor import Flavor

FLAVORS: Final[dict[str, Flavor]] = {
    flavor.name: flavor
    for flavor in (seed004.FLAVOR, vapi.FLAVOR, retell.FLAVOR, twilio.FLAVOR, elevenlabs.FLAVOR)
}
