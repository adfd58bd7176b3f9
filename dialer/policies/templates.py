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

An e-mail subject (``email_subject``) follows the same rules, and is a header: the
template may hold no CR or LF and at most ``SUBJECT_MAX_CHARS`` characters, and a
rendered subject has every line break of a value turned into a space and is cut at
``RENDERED_SUBJECT_MAX_CHARS``, so no customer field can add a header.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Mapping

from dialer.errors import TemplateError

CUSTOMER_TEMPLATE_FIELDS: frozenset[str] = frozenset(
    {"name", "surname", "customer_id", "email", "phone"}
)

SUBJECT_MAX_CHARS = 200
RENDERED_SUBJECT_MAX_CHARS = 998  # RFC 5322's line limit
# A voicemail message is spoken in one breath: bounded as written and as rendered.
VOICEMAIL_MESSAGE_MAX_CHARS = 500
RENDERED_VOICEMAIL_MAX_CHARS = 1000
_LINE_BREAKS = re.compile(r"[\r\n\x0b\x0c\x85\u2028\u2029]+")

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


def render_voicemail(text: str, values: Mapping[str, str | None]) -> str:
    """A voicemail message; long customer fields cannot make it run on."""
    return render(text, values)[:RENDERED_VOICEMAIL_MAX_CHARS]


def validate_subject(field_name: str, text: str, known_fields: Collection[str]) -> None:
    """A subject template: one line, bounded, with known placeholders; else TemplateError."""
    if _LINE_BREAKS.search(text):
        raise TemplateError(field_name, "must be one line: CR and LF are not allowed")
    if len(text) > SUBJECT_MAX_CHARS:
        raise TemplateError(field_name, f"longer than {SUBJECT_MAX_CHARS} characters")
    validate_template(field_name, text, known_fields)


def render_subject(text: str, values: Mapping[str, str | None]) -> str:
    """The subject line: placeholders filled, line breaks as spaces, bounded."""
    one_line = _LINE_BREAKS.sub(" ", render(text, values)).strip()
    return one_line[:RENDERED_SUBJECT_MAX_CHARS]


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
