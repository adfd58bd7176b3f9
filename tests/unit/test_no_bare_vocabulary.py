"""Status words are enum members in the code that acts on them, never bare strings.

A bare ``"queued"`` compared with or assigned to a column reads fine until the word
changes or is misspelt (``"cancelled"``): then the comparison is silently false. The
vocabulary (models/vocabulary.py) is the only place a word is spelled; this test scans
the services, the scheduler and the tasks for a string constant equal to one of its
words in a place where it would be used as one: compared, assigned, passed to a call,
returned, or held as a dict value.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path

import pytest

from models import vocabulary

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("dialer/services", "scheduler", "tasks")

WORDS: frozenset[str] = frozenset(
    str(member)
    for name in dir(vocabulary)
    if isinstance(kind := getattr(vocabulary, name), type)
    and issubclass(kind, StrEnum)
    and kind.__module__ == vocabulary.__name__
    for member in kind
)


def _values(node: ast.expr | None) -> Iterator[ast.expr]:
    """The expressions ``node`` may evaluate to (both arms of ``a if c else b``, ...)."""
    if node is None:
        return
    if isinstance(node, ast.IfExp):
        yield from _values(node.body)
        yield from _values(node.orelse)
    elif isinstance(node, ast.BoolOp):
        for value in node.values:
            yield from _values(value)
    elif isinstance(node, ast.Tuple | ast.List | ast.Set):
        for element in node.elts:
            yield from _values(element)
    else:
        yield node


def _is_enum_class(node: ast.AST) -> bool:
    return isinstance(node, ast.ClassDef) and any(
        isinstance(base, ast.Name) and base.id.endswith("Enum") for base in node.bases
    )


def _walk(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node but the bodies of enum classes: an enum of its own defines its own words."""
    yield tree
    for child in ast.iter_child_nodes(tree):
        if not _is_enum_class(child):
            yield from _walk(child)


_VALUE_HOLDERS = (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.Return, ast.keyword)


def _word_positions(tree: ast.AST) -> Iterator[ast.expr]:
    for node in _walk(tree):
        if isinstance(node, ast.Compare):
            yield from _values(node.left)
            for comparator in node.comparators:
                yield from _values(comparator)
        elif isinstance(node, _VALUE_HOLDERS):
            yield from _values(node.value)
        elif isinstance(node, ast.Dict):
            for value in node.values:
                yield from _values(value)
        elif isinstance(node, ast.Call):
            for arg in node.args:
                yield from _values(arg)


def bare_words(source: str) -> list[tuple[int, str]]:
    """(line, word) of every bare vocabulary word used as a value in ``source``."""
    found = {
        (node.lineno, node.value)
        for node in _word_positions(ast.parse(source))
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in WORDS
    }
    return sorted(found)


def _scanned_files() -> list[Path]:
    return sorted(path for folder in SCANNED for path in (ROOT / folder).rglob("*.py"))


def test_the_scan_sees_the_code() -> None:
    assert len(_scanned_files()) > 20
    assert {"queued", "no_answer", "goal_met", "running", "whatsapp"} <= WORDS


@pytest.mark.parametrize(
    "source",
    [
        'if attempt.status == "queued": pass',
        'attempt.status = "canceled"',
        'update(CallAttempt).values(status="pending")',
        'select(Message).where(Message.status.in_(("sent", "delivered")))',
        'x = "failed" if bad else "completed"',
        'stale(session, "queued", now)',
        'row = {"state": "not_answered"}',
        'def f(): return "applied"',
    ],
)
def test_a_bare_word_is_found(source: str) -> None:
    assert bare_words(source) != []


def test_enum_members_and_other_strings_pass() -> None:
    source = (
        "class Verdict(StrEnum):\n"
        '    FAILED = "failed"\n'
        "if attempt.status == AttemptStatus.QUEUED:\n"
        '    log.info("attempt_queued", reason="window closed")\n'
        'row = {"status": MessageStatus.SENT}\n'
    )
    assert bare_words(source) == []


def test_services_scheduler_and_tasks_use_enum_members() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{line}: {word!r}"
        for path in _scanned_files()
        for line, word in bare_words(path.read_text(encoding="utf-8"))
    ]
    assert offenders == [], "use the vocabulary's enum members:\n" + "\n".join(offenders)
