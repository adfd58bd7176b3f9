"""Message templates with ``{{name}}`` placeholders.

``call_opening_message`` and ``whatsapp_first_message`` may name customer fields
as ``{{name}}`` or ``{{ name }}``. Names match ``[a-zA-Z_][a-zA-Z0-9_.]*``.
Rendering is one regex substitution pass: no ``str.format``, no template engine,
nothing in a template or a value is ever executed, and a value that itself
contains ``{{x}}`` is inserted literally, never expanded again.

A template is validated when its campaign is created: an unknown name or a
malformed placeholder (an unclosed ``{{``, or ``{{`` ... ``}}`` around something
that is not a name) raises TemplateError naming the field, so nothing fails at
send time. Single braces and a lone ``}}`` are plain text.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Mapping

from dialer.errors import TemplateError

CUSTOMER_TEMPLATE_FIELDS: frozenset[str] = frozenset(
    {"name", "surname", "customer_id", "email", "phone"}
)

_OPEN = "{{"
_CLOSE = "}}"
_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_.]*")
_PLACEHOLDER = re.compile(r"\{\{\s*([a-zA-Z_][a-zA-Z0-9_.]*)\s*\}\}")


def template_fields(text: str) -> frozenset[str]:
    """The names of the well-formed placeholders in ``text``."""
    return frozenset(_PLACEHOLDER.findall(text))


def validate_template(field_name: str, text: str, known_fields: Collection[str]) -> None:
    """Raise TemplateError(field_name, ...) for a malformed or unknown placeholder."""
    names = list(_placeholder_names(field_name, text))
    unknown = [name for name in dict.fromkeys(names) if name not in known_fields]
    if not unknown:
        return
    listed = ", ".join(f"{{{{{name}}}}}" for name in unknown)
    noun = "placeholder" if len(unknown) == 1 else "placeholders"
    known = ", ".join(sorted(known_fields)) or "(none)"
    raise TemplateError(field_name, f"unknown {noun} {listed}; known: {known}")


def render(text: str, values: Mapping[str, str | None]) -> str:
    """Fill placeholders with values; a missing or None value renders as ''."""

    def substitute(match: re.Match[str]) -> str:
        return values.get(match.group(1)) or ""

    return _PLACEHOLDER.sub(substitute, text)


def _placeholder_names(field_name: str, text: str) -> Iterator[str]:
    """Each placeholder's name in order; raises on the first malformed one."""
    position = text.find(_OPEN)
    while position != -1:
        close = text.find(_CLOSE, position + len(_OPEN))
        if close == -1:
            raise TemplateError(field_name, f"unclosed '{{{{' at position {position}")
        inner = text[position + len(_OPEN) : close].strip()
        if not _NAME.fullmatch(inner):
            snippet = text[position : close + len(_CLOSE)]
            raise TemplateError(
                field_name,
                f"malformed placeholder {snippet} at position {position}; "
                "names are letters, digits, '_' and '.', not starting with a digit",
            )
        yield inner
        position = text.find(_OPEN, close + len(_CLOSE))
