"""`dialer keys`: create (the secret shown once), list (never the hash), revoke."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from dialer.cli.main import app
from dialer.services.api_keys import authenticate
from models import ApiKey
from models.session import transaction


def create_key(cli: CliRunner, *args: str) -> str:
    """The secret printed by `dialer keys create` (alone on stdout)."""
    result = cli.invoke(app, ["keys", "create", *args])
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


def test_a_key_is_shown_once_and_authenticates_with_its_scopes(
    cli: CliRunner, clean_db: str
) -> None:
    result = cli.invoke(
        app,
        ["keys", "create", "--name", "crm", "--scope", "calls:read", "--scope", "campaigns:read"],
    )
    assert result.exit_code == 0, result.output
    secret = result.stdout.strip()
    assert secret.startswith("sk_")
    assert "not shown again" in result.stderr
    with transaction(clean_db) as session:
        principal = authenticate(session, secret)
        stored = session.scalars(select(ApiKey)).one()
    assert principal is not None
    assert principal.scopes == frozenset({"calls:read", "campaigns:read"})
    assert secret not in (stored.secret_hash, stored.prefix)


def test_the_list_shows_what_identifies_a_key_and_never_its_hash(
    cli: CliRunner, clean_db: str
) -> None:
    secret = create_key(cli, "--name", "crm", "--scope", "customers:write")
    create_key(cli, "--name", "elsewhere", "--scope", "calls:read", "--account", "other")
    result = cli.invoke(app, ["keys", "list"])
    assert result.exit_code == 0, result.output
    with transaction(clean_db) as session:
        stored = session.scalars(select(ApiKey).where(ApiKey.name == "crm")).one()
    assert stored.prefix in result.output
    assert "crm" in result.output
    assert "customers:write" in result.output
    assert "elsewhere" not in result.output  # another account's key
    assert secret not in result.output
    assert stored.secret_hash not in result.output
    assert stored.secret_hash[:16] not in result.output


def test_a_revoked_key_no_longer_authenticates(cli: CliRunner, clean_db: str) -> None:
    secret = create_key(cli, "--name", "old", "--scope", "calls:read")
    prefix = secret[: len("sk_") + 8]
    result = cli.invoke(app, ["keys", "revoke", prefix])
    assert result.exit_code == 0, result.output
    assert "revoked" in result.output
    with transaction(clean_db) as session:
        assert authenticate(session, secret) is None
    listed = cli.invoke(app, ["keys", "list"]).output
    row = next(line for line in listed.splitlines() if prefix in line)
    assert row.rstrip(" │").split("│")[-1].strip() != "-"  # the revoked column is filled
    assert cli.invoke(app, ["keys", "revoke", prefix]).exit_code == 0  # twice is harmless


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["create", "--name", "x", "--scope", "everything"], "everything"),
        (["revoke", "sk_00000000"], "sk_00000000"),
    ],
)
def test_mistakes_are_refused_with_a_message(cli: CliRunner, args: list[str], message: str) -> None:
    result = cli.invoke(app, ["keys", *args])
    assert result.exit_code == 1
    assert message in result.output


def test_another_accounts_key_cannot_be_revoked(cli: CliRunner, clean_db: str) -> None:
    secret = create_key(cli, "--name", "theirs", "--scope", "calls:read", "--account", "other")
    result = cli.invoke(app, ["keys", "revoke", secret[:11]])
    assert result.exit_code == 1
    with transaction(clean_db) as session:
        assert authenticate(session, secret) is not None
