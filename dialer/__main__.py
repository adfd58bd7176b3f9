"""`python -m dialer ...` is the `dialer` command (child processes use this form)."""

from dialer.cli import app

app(prog_name="dialer")
