"""dialer.gc_tuning: fewer young collections, start-up objects frozen out of collection."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from dialer import gc_tuning


@pytest.fixture(autouse=True)
def restore_gc() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


def test_tune_raises_the_young_threshold_and_freezes_what_is_loaded() -> None:
    gc.unfreeze()
    _, older, oldest = gc.get_threshold()
    gc_tuning.tune(20_000)
    assert gc.get_threshold() == (20_000, older, oldest)
    assert gc.get_freeze_count() > 1000  # modules, classes, functions of this process


def test_zero_keeps_pythons_defaults() -> None:
    gc.unfreeze()
    before = gc.get_threshold()
    gc_tuning.tune(0)
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_worker_and_beat_signals_tune_the_collector(monkeypatch: pytest.MonkeyPatch) -> None:
    from celery import signals

    import tasks.app  # noqa: F401  (connects the handlers)
    from dialer.composition import worker
    from tasks import observability

    tuned: list[int] = []
    monkeypatch.setattr(gc_tuning, "tune", tuned.append)
    for signal in (signals.worker_init, signals.worker_process_init, signals.beat_init):
        receivers = [r() if isinstance(r, weakref.ref) else r for _, r in signal.receivers]
        assert observability.tune_garbage_collector in receivers, signal.name
    observability.tune_garbage_collector()
    assert tuned == [worker().runtime.settings.gc_threshold]
