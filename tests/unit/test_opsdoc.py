"""The settings reference in docs/OPERATIONS.md is generated from the Settings model."""

from __future__ import annotations

import subprocess
import sys
from datetime import time
from pathlib import Path

import pytest
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from dialer import opsdoc
from dialer.settings import Settings

REPO = Path(__file__).resolve().parents[2]
GUIDE = REPO / "docs" / "OPERATIONS.md"


class _Sample(BaseSettings):
    """A small model with one field of each kind the generator has to render."""

    model_config = SettingsConfigDict(env_prefix="SAMPLE_")

    url: str | None = Field(default=None, description="Where | it is.")
    port: int = Field(default=80, ge=1, le=65535, description="Port.")
    ratio: float = Field(default=0.5, gt=0, description="Share.")
    opens: time = Field(default=time(8, 0), description="Opening.")
    token: SecretStr = Field(default=SecretStr("tok_live_123"), description="Token.")
    password: SecretStr | None = Field(default=None, description="Password.")
    options: dict[str, int] = Field(default_factory=dict, description="JSON.")
    enabled: bool = Field(default=False, description="Switch.")
    required_name: str = Field(description="Must be set.")


def test_the_operations_guide_is_current() -> None:
    """Fails when a setting was added or changed without `make docs`."""
    current, fresh = opsdoc.updated_document(GUIDE)
    assert current == fresh, "docs/OPERATIONS.md is stale: run `make docs`"


def test_every_setting_is_in_the_guide_with_its_description() -> None:
    guide = GUIDE.read_text()
    for name, field in Settings.model_fields.items():
        row = next(ln for ln in guide.splitlines() if ln.startswith(f"| `DIALER_{name.upper()}` |"))
        assert opsdoc._cell(field.description or "") in row, name


def test_no_secret_default_reaches_the_guide() -> None:
    guide = GUIDE.read_text()
    for name, field in Settings.model_fields.items():
        default = field.get_default(call_default_factory=True)
        # An empty default is no default (the Meta and SMS secrets): nothing to leak.
        if isinstance(default, SecretStr) and default.get_secret_value():
            assert default.get_secret_value() not in guide, name


def test_rows_render_types_bounds_and_defaults() -> None:
    rows = {row.env_var: row for row in opsdoc.setting_rows(_Sample)}
    assert list(rows) == [
        "SAMPLE_URL",
        "SAMPLE_PORT",
        "SAMPLE_RATIO",
        "SAMPLE_OPENS",
        "SAMPLE_TOKEN",
        "SAMPLE_PASSWORD",
        "SAMPLE_OPTIONS",
        "SAMPLE_ENABLED",
        "SAMPLE_REQUIRED_NAME",
    ]
    assert (rows["SAMPLE_URL"].type, rows["SAMPLE_URL"].default) == (
        "string (optional)",
        "*(unset)*",
    )
    assert rows["SAMPLE_PORT"].type == "integer, >= 1, <= 65535"
    assert rows["SAMPLE_PORT"].default == "`80`"
    assert rows["SAMPLE_RATIO"].type == "number, > 0"
    assert rows["SAMPLE_OPENS"].default == "`08:00`"
    assert (rows["SAMPLE_TOKEN"].type, rows["SAMPLE_TOKEN"].default) == ("secret", "*(hidden)*")
    assert rows["SAMPLE_PASSWORD"].type == "secret (optional)"
    assert rows["SAMPLE_OPTIONS"].type == "JSON object"
    assert rows["SAMPLE_OPTIONS"].default == "`{}`"
    assert rows["SAMPLE_ENABLED"].default == "`false`"
    assert rows["SAMPLE_REQUIRED_NAME"].default == "**required**"


def test_the_table_escapes_pipes_and_hides_secrets() -> None:
    table = opsdoc.render_settings_table(_Sample)
    lines = table.splitlines()
    assert lines[0] == "| environment variable | type | default | description |"
    assert len(lines) == 2 + len(_Sample.model_fields)
    assert "Where \\| it is." in table
    assert "tok_live_123" not in table
    assert all(line.count(" | ") == 3 for line in lines[2:])


def test_replace_between_markers_keeps_the_hand_written_text() -> None:
    document = f"intro\n{opsdoc.BEGIN_MARKER}\nold table\n{opsdoc.END_MARKER}\noutro\n"
    replaced = opsdoc.replace_between_markers(document, "new table")
    assert replaced == f"intro\n{opsdoc.BEGIN_MARKER}\nnew table\n{opsdoc.END_MARKER}\noutro\n"
    assert opsdoc.replace_between_markers(replaced, "new table") == replaced


@pytest.mark.parametrize(
    "document",
    ["no markers", opsdoc.BEGIN_MARKER, f"{opsdoc.END_MARKER}\n{opsdoc.BEGIN_MARKER}"],
)
def test_missing_or_swapped_markers_are_an_error(document: str) -> None:
    with pytest.raises(ValueError, match="needs"):
        opsdoc.replace_between_markers(document, "table")


def test_check_mode_fails_on_a_stale_file_and_the_writer_fixes_it(tmp_path: Path) -> None:
    stale = tmp_path / "OPERATIONS.md"
    providers = "".join(
        "{}\n| old |\n{}\n".format(*opsdoc.provider_markers(name))
        for name in ("vapi", "retell", "twilio", "elevenlabs", "email")
    )
    stale.write_text(f"# Ops\n{opsdoc.BEGIN_MARKER}\n| old |\n{opsdoc.END_MARKER}\n{providers}")
    command = [sys.executable, "-m", "dialer.opsdoc"]
    check = subprocess.run([*command, "--check", str(stale)], capture_output=True, text=True)
    assert check.returncode == 1
    assert "stale" in check.stderr
    write = subprocess.run([*command, str(stale)], capture_output=True, text=True)
    assert write.returncode == 0, write.stderr
    assert "`DIALER_DATABASE_URL`" in stale.read_text()
    assert "`DIALER_TWILIO_AUTH_TOKEN`" in stale.read_text()
    assert "`DIALER_EMAIL_SENDGRID_PUBLIC_KEY`" in stale.read_text()  # a channel's own
    again = subprocess.run([*command, "--check", str(stale)], capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
