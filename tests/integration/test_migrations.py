"""The migration and the models agree, and upgrade/downgrade both run."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, create_engine, inspect, text
from sqlalchemy.engine import make_url

from dialer import migrate
from dialer.policies.vocabulary import FallbackChannel
from models import Base
from models.optional_indexes import OPTIONAL_INDEX_NAMES, include_object
from tests.integration.pipeline_support import rome_csv, setup_campaign


@pytest.fixture
def scratch_url(service_urls):  # type: ignore[no-untyped-def]
    url = make_url(service_urls.database_url).set(database="dialer_migrations_test")
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text('DROP DATABASE IF EXISTS "dialer_migrations_test" WITH (FORCE)'))
        conn.execute(text('CREATE DATABASE "dialer_migrations_test"'))
    yield url.render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text('DROP DATABASE IF EXISTS "dialer_migrations_test" WITH (FORCE)'))
    admin.dispose()


def test_models_and_migration_have_no_drift(database_url: str) -> None:
    engine = create_engine(database_url)
    with engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(
                conn, opts={"compare_type": True, "include_object": include_object}
            ),
            Base.metadata,
        )
    engine.dispose()
    assert diff == []


HEAD = "0019"


def test_upgrade_then_downgrade_then_upgrade(scratch_url: str) -> None:
    migrate.upgrade(scratch_url)
    assert migrate.current_revision(scratch_url) == HEAD
    engine = create_engine(scratch_url)
    assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
    assert "ix_call_attempts_claimed" not in _index_names(engine, "call_attempts")
    migrate.downgrade(scratch_url, "0003")
    assert "ix_call_attempts_claimed" in _index_names(engine, "call_attempts")
    migrate.downgrade(scratch_url, "0001")  # the rotation cursor goes back on campaigns
    columns = {c["name"] for c in inspect(engine).get_columns("campaigns")}
    assert "rotation_cursor" in columns
    assert "rotation_cursors" not in inspect(engine).get_table_names()
    migrate.upgrade(scratch_url)
    migrate.downgrade(scratch_url, "base")
    assert migrate.current_revision(scratch_url) is None
    assert set(inspect(engine).get_table_names()) == {"alembic_version"}
    migrate.upgrade(scratch_url)
    assert migrate.current_revision(scratch_url) == HEAD
    engine.dispose()


def test_the_trigram_indexes_come_and_go_with_0012(scratch_url: str) -> None:
    migrate.upgrade(scratch_url)
    engine = create_engine(scratch_url)
    built = _index_names(engine, "customers") | _index_names(engine, "call_attempts")
    assert built >= OPTIONAL_INDEX_NAMES  # both servers here have pg_trgm
    migrate.downgrade(scratch_url, "0006")
    left = _index_names(engine, "customers") | _index_names(engine, "call_attempts")
    assert not left & OPTIONAL_INDEX_NAMES
    migrate.upgrade(scratch_url)
    engine.dispose()


def _index_names(engine: Engine, table: str) -> set[str]:
    return {str(index["name"]) for index in inspect(engine).get_indexes(table)}


def test_the_daily_claim_counters_start_from_the_attempts_claimed_lately(scratch_url: str) -> None:
    # The services write today's columns: make the campaign at head, then go back.
    migrate.upgrade(scratch_url)
    campaign_id = setup_campaign(scratch_url, csv_text=rome_csv(3))
    migrate.downgrade(scratch_url, "0002")
    engine = create_engine(scratch_url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO call_attempts (id, enrollment_id, campaign_id, customer_id,"
                " attempt_no, idempotency_key, status, scheduled_at, queued_at)"
                " SELECT gen_random_uuid(), id, campaign_id, customer_id, 1, 'k-' || id,"
                " 'queued', now(), now() FROM enrollments"
            )
        )
    migrate.upgrade(scratch_url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT campaign_id, claimed FROM campaign_daily_claims")).all()
    engine.dispose()
    assert [(row.campaign_id, row.claimed) for row in rows] == [(campaign_id, 3)]


FALLBACK_COLUMNS = ("fallback_channel_id", "fallback_first_message", "fallback_after_attempts")
WHATSAPP_COLUMNS = ("whatsapp_channel_id", "whatsapp_first_message", "whatsapp_after_attempts")


def test_the_fallback_columns_keep_their_data_both_ways(scratch_url: str) -> None:
    migrate.upgrade(scratch_url)
    setup_campaign(scratch_url, {"whatsapp_after_attempts": 2}, rome_csv(2))
    engine = create_engine(scratch_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE enrollments SET fallback_at = '2026-12-01T10:00:00Z'"))
        before = conn.execute(text(f"SELECT {', '.join(FALLBACK_COLUMNS)} FROM campaigns")).one()
    assert before[0] is not None
    assert before[1:] == ("Hi {{name}}, we tried to call you.", 2)

    migrate.downgrade(scratch_url, "0004")
    columns = {c["name"] for c in inspect(engine).get_columns("campaigns")}
    assert "fallback_channel" not in columns
    with engine.connect() as conn:
        old = conn.execute(text(f"SELECT {', '.join(WHATSAPP_COLUMNS)} FROM campaigns")).one()
        old_at = conn.execute(text("SELECT whatsapp_fallback_at FROM enrollments")).scalars()
        assert tuple(old) == tuple(before)
        assert all(at is not None for at in old_at)

    migrate.upgrade(scratch_url)
    with engine.connect() as conn:
        after = conn.execute(
            text(f"SELECT fallback_channel, {', '.join(FALLBACK_COLUMNS)} FROM campaigns")
        ).one()
        fallback_at = conn.execute(text("SELECT fallback_at FROM enrollments")).scalars().all()
    engine.dispose()
    assert tuple(after) == ("whatsapp", *before)
    assert len(fallback_at) == 2
    assert all(at is not None for at in fallback_at)


def test_the_fallback_channel_allows_only_the_enums_words(database_url: str) -> None:
    engine = create_engine(database_url)
    with engine.connect() as conn:
        check = conn.execute(
            text(
                "SELECT pg_get_constraintdef(oid) FROM pg_constraint"
                " WHERE conname = 'ck_campaigns_fallback_channel'"
            )
        ).scalar_one()
    engine.dispose()
    assert "'whatsapp'" in check
    assert "'sms'" in check  # 0009
    # a new member needs a migration
    assert set(FallbackChannel) == {FallbackChannel.WHATSAPP, FallbackChannel.SMS}
