"""A webhook body read as a JSON object PostgreSQL can store, or refused with a reason.

A body can be signed and still not be storable: NUL characters (raw or ``\\u0000``),
lone surrogates, NaN/Infinity or a number too large for a float, or nesting deep
enough to exhaust the parser's stack. Each of these used to reach the insert and
answer 500, so the provider sent the event again forever. Here each is a ValueError
(the ingress answers 422) and the body is kept as ``raw_payload``: its exact bytes in
base64 and a readable, escaped copy of its start.
"""

from __future__ import annotations

import base64
import json
import math
from typing import Any, Final
from urllib.parse import parse_qsl

FORM_MAX_FIELDS: Final = 200  # a status callback has ~30; bounds what a body may ask us to hold
MAX_NESTING: Final = 64  # providers send 5-10 levels; PostgreSQL and our parsers recurse
RAW_TEXT_KEPT_CHARS: Final = 10_000  # of the readable copy; the base64 copy is whole


def decode_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object that can be stored as is; ValueError saying why not."""
    try:
        payload = json.loads(body, parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError:
        raise ValueError(f"body is nested more than {MAX_NESTING} levels deep") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"body is not valid JSON ({exc})") from None
    if not isinstance(payload, dict):
        raise ValueError("body is not a JSON object")
    _check_storable(payload)
    return payload


def decode_form(body: bytes) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body (Twilio's callbacks), else ValueError."""
    try:
        fields = parse_qsl(
            body.decode("utf-8"),
            keep_blank_values=True,
            strict_parsing=True,
            max_num_fields=FORM_MAX_FIELDS,
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"body: not a form ({exc})") from None
    _check_text("".join(name + value for name, value in fields))
    return dict(fields)


def raw_payload(body: bytes) -> dict[str, Any]:
    """What is kept of a body that is not a storable JSON object (JSONB-safe)."""
    return {
        "raw": storable_text(body[:RAW_TEXT_KEPT_CHARS].decode("utf-8", errors="replace")),
        "raw_base64": base64.b64encode(body).decode("ascii"),
        "raw_bytes": len(body),
    }


def storable_text(text: str) -> str:
    """``text`` with NUL and lone surrogates written as escapes (PostgreSQL holds neither)."""
    escaped = text.replace("\x00", "\\u0000")
    return escaped.encode("utf-8", errors="backslashreplace").decode("utf-8")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"body holds {name}, which is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"body holds the number {text[:40]}, too large for a float")
    return value


def _check_storable(payload: dict[str, Any]) -> None:
    """Walk the tree without recursion: depth, NUL and lone surrogates in keys and strings."""
    pending: list[tuple[Any, int]] = [(payload, 1)]
    while pending:
        item, depth = pending.pop()
        if depth > MAX_NESTING:
            raise ValueError(f"body is nested more than {MAX_NESTING} levels deep")
        if isinstance(item, str):
            _check_text(item)
        elif isinstance(item, dict):
            for key, value in item.items():
                _check_text(key)
                pending.append((value, depth + 1))
        elif isinstance(item, list):
            pending += [(value, depth + 1) for value in item]


def _check_text(text: str) -> None:
    if "\x00" in text:
        raise ValueError("body holds a NUL character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("body holds a lone surrogate (not valid Unicode)") from None
