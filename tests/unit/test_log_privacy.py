"""Logs carry no personal data and every JSON line is whole (issue 14, item 6)."""

from __future__ import annotations

import json
import logging
import sys
import threading
import uuid
from pathlib import Path

import pytest
import structlog
from sqlalchemy.exc import IntegrityError

from dialer.logging import configure_logging, get_logger, mask_phone, privacy_filter
from dialer.settings import load_settings

PERSON = {"name": "Maria Rossi", "phone": "+14155550123", "email": "maria.rossi@example.com"}


@pytest.fixture
def json_logs() -> None:
    configure_logging(load_settings(log_format="json", _env_file=None), force=True)


def test_request_ids_and_other_uuids_are_never_masked() -> None:
    ids = [str(uuid.uuid4()) for _ in range(2000)]
    ids += ["12345678-1234-4234-8234-123456789012", "00000000-0000-0000-0000-000000000000"]
    garbled = [
        i
        for i in ids
        if mask_phone(i) != i or mask_phone(f"request {i} done") != f"request {i} done"
    ]
    assert garbled == []
    assert mask_phone("call +14155550123 then 12345678-1234-4234-8234-123456789012") == (
        "call +1********23 then 12345678-1234-4234-8234-123456789012"
    )


def test_a_database_error_traceback_carries_no_sql_parameters(
    json_logs: None, capsys: pytest.CaptureFixture[str]
) -> None:
    error = IntegrityError(
        "INSERT INTO customers (name, phone, email) VALUES (...)",
        PERSON,
        ValueError("duplicate key"),
    )
    try:
        raise error
    except IntegrityError:
        get_logger("test").exception("customer_insert_failed")
    logged = capsys.readouterr().err
    assert "customer_insert_failed" in logged
    assert "IntegrityError" in logged
    for value in PERSON.values():
        assert value not in logged


def test_stdlib_records_are_masked_and_the_access_log_drops_query_strings(
    capsys: pytest.CaptureFixture[str],
) -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/calls?q=%2B8139012345678&limit=5", "1.1", 200),
        None,
    )
    assert privacy_filter(record)
    assert record.getMessage() == '127.0.0.1:5000 - "GET /calls HTTP/1.1" 200'
    try:
        raise IntegrityError("INSERT ...", PERSON, ValueError("duplicate key"))
    except IntegrityError:
        failed = logging.LogRecord(
            "uvicorn.error",
            logging.ERROR,
            __file__,
            1,
            "Exception for %s",
            (PERSON["email"],),
            sys.exc_info(),
        )
    assert privacy_filter(failed)
    text = logging.Formatter().format(failed)
    assert "IntegrityError" in text
    for value in PERSON.values():
        assert value not in text


def test_json_lines_from_many_threads_are_written_whole(
    json_logs: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "stderr.log"
    lines_per_thread, threads = 60, 16
    # Like the real stderr: line-buffered text over a buffered binary file.
    with open(path, "w", buffering=1) as stream:
        monkeypatch.setattr(sys, "stderr", stream)
        monkeypatch.setattr(sys, "getswitchinterval", sys.getswitchinterval)
        interval = sys.getswitchinterval()
        sys.setswitchinterval(1e-5)  # switch threads as often as possible
        try:
            log = get_logger("test")
            start = threading.Barrier(threads)

            def write(n: int) -> None:
                start.wait()
                with structlog.contextvars.bound_contextvars(request_id=str(uuid.uuid4())):
                    for i in range(lines_per_thread):
                        log.info("line_written", thread=n, i=i, pad="x" * (100 + 331 * i))

            workers = [threading.Thread(target=write, args=(n,)) for n in range(threads)]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
        finally:
            sys.setswitchinterval(interval)
    lines = path.read_text().splitlines()
    assert len(lines) == threads * lines_per_thread
    assert all(json.loads(line)["event"] == "line_written" for line in lines)
