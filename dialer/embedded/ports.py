"""Loopback ports: keep the remembered one while it is free, else ask the kernel."""

from __future__ import annotations

import socket

import psutil

from dialer.embedded.urls import HOST

PORT_ATTEMPTS = 3  # a free port can be taken between our check and the server's bind


def port_is_free(port: int) -> bool:
    """True if a server could bind HOST:port now.

    SO_REUSEADDR mirrors what PostgreSQL and Redis do, so a port left in TIME_WAIT by
    our own stopped server still counts as free (that is how the remembered port is
    reused after a restart), while one with a listener on it does not.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def choose_port(remembered: int | None) -> int:
    """The remembered port if it is still free, else one the kernel says is free."""
    if remembered is not None and port_is_free(remembered):
        return remembered
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
    return port


def listening_port(pid: int) -> int | None:
    """The TCP port process ``pid`` listens on at HOST (None if unknown)."""
    try:
        conns = psutil.Process(pid).net_connections(kind="tcp")
    except (psutil.Error, OSError):
        return None
    for conn in conns:
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.ip == HOST:
            return int(conn.laddr.port)
    return None
