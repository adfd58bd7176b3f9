"""``dialer suppressions``: load a file (bad lines written out), add, list masked, remove."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from dialer.cli.main import app


def run(cli: CliRunner, *args: str, code: int = 0) -> str:
    result = cli.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.output


def test_load_add_list_remove(cli: CliRunner, tmp_path: Path) -> None:
    listing = tmp_path / "dnc.txt"
    listing.write_text('+12125550100\n2125550101\n=HYPERLINK("x")\n', encoding="utf-8")
    out = run(cli, "suppressions", "load", str(listing), "--source", "national_dnc",
              "--default-region", "US", "--listed-on", "2026-11-01")  # fmt: skip
    assert "added 2" in out
    assert "rejected 1" in out
    rejects = (tmp_path / "dnc.rejected.csv").read_text(encoding="utf-8")
    assert "'=HYPERLINK" in rejects  # spreadsheet-safe: the formula is text

    assert "listed" in run(cli, "suppressions", "add", "+12125550102", "--reason", "asked")
    assert "already listed" in run(cli, "suppressions", "add", "+12125550102")
    run(cli, "suppressions", "add", "12125550102", code=1)  # not E.164
    run(cli, "suppressions", "load", str(listing), "--source", "Bad Source", code=2)

    table = run(cli, "suppressions", "list")
    assert "national_dnc" in table
    assert "manual" in table
    assert "+12125550100" not in table  # masked like every phone the CLI prints

    assert "removed" in run(cli, "suppressions", "remove", "+12125550102")
    run(cli, "suppressions", "remove", "+12125550102", code=1)
