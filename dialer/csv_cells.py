"""CSV cells a spreadsheet reads as data, never as a formula (CSV injection).

Spreadsheets start a formula at a cell beginning with = + - or @, and some skip a
leading tab or carriage return first. A customer-controlled cell such as a name
``=HYPERLINK(...)`` would then run when an operator opens the export. Such cells get
a leading apostrophe (OWASP's advice: shown as text, the apostrophe hidden).

Phone numbers and plain numbers ("+14155550123", "-12.5") are left as they are: a
spreadsheet can only compute them, never call anything, and CRMs read them back.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Final

FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")
_NUMBER_OR_PHONE: Final = re.compile(r"[+-]?\d[\d ().]*(?:-[\d ().]+)*")


def spreadsheet_safe(value: Any) -> Any:
    """``value``, with a leading apostrophe when it is text a spreadsheet would evaluate."""
    if not isinstance(value, str) or not value.startswith(FORMULA_STARTS):
        return value
    if _NUMBER_OR_PHONE.fullmatch(value):
        return value
    return "'" + value


def spreadsheet_safe_row(values: Iterable[Any]) -> list[Any]:
    return [spreadsheet_safe(value) for value in values]
