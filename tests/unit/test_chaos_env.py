"""`make chaos` starts `dialer api` beside a real provider: its settings must pass the check.

A provider secret added to the settings (Meta's app secret and verify token) once left
the chaos world's `dialer api` refusing to start, and every fault run failed at its
first health check.
"""

from __future__ import annotations

from pathlib import Path

from bench.chaos import build_env
from dialer.composition import check_provider_settings
from dialer.settings import PROVIDER_SECRETS, load_settings


def test_the_chaos_world_s_settings_pass_the_provider_check(tmp_path: Path) -> None:
    env = build_env("postgresql+psycopg://u@127.0.0.1:5432/x", "redis://127.0.0.1:1/0", tmp_path)
    settings = load_settings(**{k.removeprefix("DIALER_").lower(): v for k, v in env.items()})
    check_provider_settings(settings)  # raises SettingsError naming a missing secret
    for name in PROVIDER_SECRETS:
        assert len(env[f"DIALER_{name.upper()}"]) >= 32, name
