"""Agents name their providers: stored as given, and a worker checks it can build them."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from dialer.composition import check_providers_in_use
from dialer.errors import SettingsError
from dialer.settings import load_settings
from models import Agent
from tests.integration.pipeline_support import setup_campaign, uow_for

pytestmark = pytest.mark.integration


def _agent_campaign(url: str, **agent: str) -> None:
    block: dict[str, object]
    block = {"name": "Agent", "provider_agent_id": "agt_1", "phone_numbers": ["+12125550100"]}
    block |= agent
    setup_campaign(url, {"agent": block, "whatsapp_channel": None, "whatsapp_first_message": None})


def test_an_agent_without_a_provider_keeps_the_deployments(clean_db: str, session: Session) -> None:
    _agent_campaign(clean_db)
    agent = session.query(Agent).one()
    assert (agent.provider, agent.fallback_provider) == (None, None)
    assert check_providers_in_use(load_settings(), uow_for(clean_db)) == set()


def test_a_worker_refuses_to_start_when_an_agents_provider_has_no_credentials(
    clean_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("API_KEY", "WEBHOOK_SECRET"):
        monkeypatch.delenv(f"DIALER_RETELL_{name}", raising=False)
    _agent_campaign(clean_db, provider="simulated", fallback_provider="retell")

    with pytest.raises(SettingsError, match="DIALER_RETELL_API_KEY"):
        check_providers_in_use(load_settings(), uow_for(clean_db))

    monkeypatch.setenv("DIALER_RETELL_API_KEY", "retell-test-key-1234")
    assert check_providers_in_use(load_settings(), uow_for(clean_db)) == {"retell"}
