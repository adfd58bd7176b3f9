"""docs/OPERATIONS.md lists every setting of each hosted voice provider, as the models say.

The tables between the ``provider-settings:<name>`` markers are generated from each
adapter's ``Settings`` with the same renderer as the main reference. When this test
fails, regenerate them with ``python -m tests.unit.test_provider_settings_doc``.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from types import ModuleType

from dialer.opsdoc import render_settings_table
from dialer.providers import elevenlabs, retell, twilio_voice, vapi

DOC = Path(__file__).resolve().parents[2] / "docs" / "OPERATIONS.md"
MODULES: tuple[ModuleType, ...] = (vapi, retell, twilio_voice, elevenlabs)


def _markers(name: str) -> tuple[str, str]:
    source = f"tests/unit/{Path(__file__).name}"
    return (
        f"<!-- provider-settings:{name}:begin (generated; see {source}) -->",
        f"<!-- provider-settings:{name}:end -->",
    )


def regenerated(document: str) -> str:
    for module in MODULES:
        begin, end = _markers(module.PROVIDER_NAME)
        pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.DOTALL)
        table = render_settings_table(module.Settings)
        if not pattern.search(document):
            raise AssertionError(f"docs/OPERATIONS.md lacks the markers {begin!r} ... {end!r}")
        replacement = f"{begin}\n{table}\n{end}"
        document = pattern.sub(lambda _, text=replacement: text, document)
    return document


def test_provider_settings_reference_is_current() -> None:
    current = DOC.read_text(encoding="utf-8")
    assert regenerated(current) == current, (
        "docs/OPERATIONS.md provider settings are out of date:"
        " run python -m tests.unit.test_provider_settings_doc"
    )


if __name__ == "__main__":
    DOC.write_text(regenerated(DOC.read_text(encoding="utf-8")), encoding="utf-8")
    sys.exit(0)
