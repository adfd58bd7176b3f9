"""`python -m dialer ...` is the `dialer` command (child processes use this form)."""

from dialer.cli.main import app

app(prog_name="dialer")
