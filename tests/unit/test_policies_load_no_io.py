"""Importing the pure policies loads no database, broker or network library.

import-linter checks the imports the code spells; this checks what Python actually
loads, which includes package ``__init__`` modules: the policies import the words from
``models.vocabulary``, and the ``models`` package must not bring SQLAlchemy with it.
"""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import dialer.policies

IO_LIBRARIES = ("sqlalchemy", "psycopg", "redis", "celery", "kombu", "httpx", "fastapi")


def test_importing_every_policy_loads_no_io_library() -> None:
    policies = [f"dialer.policies.{m.name}" for m in pkgutil.iter_modules(dialer.policies.__path__)]
    assert "dialer.policies.retry" in policies
    probe = (
        "import importlib, sys\n"
        f"for name in {policies!r}: importlib.import_module(name)\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({IO_LIBRARIES!r})))\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == "[]"
