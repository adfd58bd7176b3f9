"""The `dialer` command: `main` holds the command tree, one module per group of commands.

Kept empty so `python -m dialer.cli.ops` (the probes) does not import the whole CLI.
"""
