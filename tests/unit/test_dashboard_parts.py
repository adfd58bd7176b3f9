"""The dashboard's pure parts: the session signer, its secret's rule, the chart geometry,
and the window's open intervals the plan timeline draws."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from dialer.api.ui import charts
from dialer.api.ui.session import Signer
from dialer.api.ui.signin import safe_next
from dialer.composition.providers import check_ui_settings
from dialer.errors import SettingsError
from dialer.policies.window import LegalBound, WorkingHours, open_intervals, validate_window
from dialer.settings import load_settings

NOW = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)  # a Monday
HOUR = timedelta(hours=1)
KEY = uuid.UUID("8d3c1c6e-8f1e-4f43-9a57-0d1d3c1a6b01")
REAL_PROVIDER_SECRETS: dict[str, Any] = {
    "provider": "http",
    "webhook_secret": "dashboard-test-webhook-secret",
    "provider_api_key": "dashboard-test-provider-key",
    "whatsapp_token": "dashboard-test-whatsapp-token",
    "whatsapp_app_secret": "dashboard-test-meta-app-secret",
    "whatsapp_verify_token": "dashboard-test-verify-token",
}


# ------------------------------------------------------------------------------ sessions


def test_a_session_value_names_the_key_and_reads_back_until_it_expires() -> None:
    signer = Signer(b"k" * 32)
    value = signer.session_value(KEY, NOW, HOUR)
    assert value.startswith(f"{KEY}.")
    token = signer.read_session(value, NOW + HOUR - timedelta(seconds=1))
    assert token is not None
    assert token.key_id == KEY
    assert signer.read_session(value, NOW + HOUR) is None  # expired


@pytest.mark.parametrize(
    "tamper",
    [
        lambda v: v.replace(str(KEY), str(uuid.uuid4())),  # another key
        lambda v: v[:-1] + ("0" if v[-1] != "0" else "1"),  # the signature
        lambda v: v.split(".", 1)[1],  # a part missing
        lambda v: "",
    ],
)
def test_a_tampered_session_value_is_no_session(tamper: Any) -> None:
    signer = Signer(b"k" * 32)
    assert signer.read_session(tamper(signer.session_value(KEY, NOW, HOUR)), NOW) is None


def test_another_servers_secret_signs_nothing_here() -> None:
    value = Signer(b"a" * 32).session_value(KEY, NOW, HOUR)
    assert Signer(b"b" * 32).read_session(value, NOW) is None


def test_two_sign_ins_of_one_key_get_their_own_csrf_tokens() -> None:
    signer = Signer(b"k" * 32)
    first, second = (signer.session_value(KEY, NOW, HOUR) for _ in range(2))
    assert first != second
    assert signer.csrf_ok(first, signer.csrf_token(first))
    assert not signer.csrf_ok(first, signer.csrf_token(second))
    assert not signer.csrf_ok(first, None)
    assert not signer.csrf_ok(None, signer.csrf_token(first))


def test_a_signed_flash_reads_back_and_a_forged_one_does_not() -> None:
    signer = Signer(b"k" * 32)
    assert signer.unsigned("flash", signer.signed("flash", "done%20ok")) == "done%20ok"
    assert signer.unsigned("flash", "0" * 64 + ".forged") is None


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/ui/calls?q=x", "/ui/calls?q=x"),
        ("//evil.example/ui/", "/ui/campaigns"),
        ("https://evil.example/ui/", "/ui/campaigns"),
        ("/ui/\\evil", "/ui/campaigns"),
        ("/docs", "/ui/campaigns"),
    ],
)
def test_sign_in_goes_back_only_to_a_dashboard_page(target: str, expected: str) -> None:
    assert safe_next(target) == expected


# ------------------------------------------------------------------------ the secret rule


def test_the_simulated_provider_allows_an_unset_secret() -> None:
    check_ui_settings(load_settings(provider="simulated"))


@pytest.mark.parametrize(
    ("secret", "why"),
    [
        ("", "is not set"),
        ("change-me", "is a public sandbox default"),
        ("short-secret", "is shorter than 16"),
    ],
)
def test_a_real_provider_needs_a_strong_session_secret(secret: str, why: str) -> None:
    settings = load_settings(**REAL_PROVIDER_SECRETS, ui_session_secret=secret)
    with pytest.raises(SettingsError, match=f"DIALER_UI_SESSION_SECRET: {why}"):
        check_ui_settings(settings)


def test_a_real_provider_with_a_strong_secret_starts() -> None:
    strong = "a-dashboard-secret-of-our-own-0123"
    check_ui_settings(load_settings(**REAL_PROVIDER_SECRETS, ui_session_secret=strong))


# ------------------------------------------------------------------------------- charts


def test_progress_bars_fill_their_share_and_never_overflow() -> None:
    half, over, empty = charts.progress_bars([("a", 3, 6), ("b", 9, 6), ("c", 0, 0)])
    assert half.width == pytest.approx(charts.BAR_WIDTH / 2, abs=0.1)
    assert over.width == charts.BAR_WIDTH
    assert empty.width == 0
    assert [bar.y for bar in (half, over, empty)] == [0, charts.ROW_HEIGHT, 2 * charts.ROW_HEIGHT]


def test_a_stacked_bar_covers_the_width_known_words_first() -> None:
    segments = charts.stacked(
        Counter({"pending": 1, "answered": 2, "no_answer": 1}), charts.OUTCOME_CLASSES
    )
    assert [s.label for s in segments] == ["answered", "no_answer", "pending"]
    assert sum(s.width for s in segments) == pytest.approx(charts.CHART_WIDTH)
    assert segments[-1].css == "c-mute"
    assert charts.stacked({}, charts.OUTCOME_CLASSES) == []


def test_timeline_ticks_fall_on_local_midnights_across_a_clock_change() -> None:
    start = datetime(2026, 10, 23, 12, tzinfo=UTC)  # Rome leaves summer time on the 25th
    ticks = charts.timeline_ticks(start, start + timedelta(days=7), ZoneInfo("Europe/Rome"))
    assert [t.label for t in ticks] == [
        "Sat 24", "Sun 25", "Mon 26", "Tue 27", "Wed 28", "Thu 29", "Fri 30",
    ]  # fmt: skip
    assert all(charts.LABEL_WIDTH <= t.x <= charts.CHART_WIDTH for t in ticks)


# ----------------------------------------------------------------------- open intervals


def test_open_intervals_are_the_windows_hours_clipped_to_the_range() -> None:
    window = validate_window(
        WorkingHours(start=time(9), end=time(17), weekdays=frozenset(range(5))), LegalBound()
    )
    rome = ZoneInfo("Europe/Rome")
    intervals = open_intervals(window, [rome], NOW, NOW + timedelta(days=7))
    # Monday 10:00 UTC is 11:00 in Rome: open until 16:00 UTC, then Tue..Fri 08:00-16:00
    # UTC, and the next Monday from 08:00 UTC until the range ends at 10:00.
    assert intervals[0] == (NOW, datetime(2026, 12, 7, 16, tzinfo=UTC))
    assert len(intervals) == 6
    assert intervals[-1] == (datetime(2026, 12, 14, 8, tzinfo=UTC), NOW + timedelta(days=7))
    assert open_intervals(window, [rome], NOW, NOW) == ()


def test_open_intervals_of_far_apart_zones_are_their_common_hours() -> None:
    window = validate_window(
        WorkingHours(start=time(9), end=time(19), weekdays=frozenset(range(7))), LegalBound()
    )
    zones = [ZoneInfo("Europe/Rome"), ZoneInfo("America/New_York")]
    intervals = open_intervals(window, zones, NOW, NOW + timedelta(days=1))
    # 09:00 New York (14:00 UTC) to 19:00 Rome (18:00 UTC).
    assert intervals == (
        (datetime(2026, 12, 7, 14, tzinfo=UTC), datetime(2026, 12, 7, 18, tzinfo=UTC)),
    )


# ------------------------------------------------------------------------ package data


def test_the_templates_and_static_files_ship_in_the_package() -> None:
    """pyproject's package-data: an installed dialer carries its pages (not only a checkout)."""
    from importlib.resources import files

    ui = files("dialer.api.ui")
    for name in ("base.html", "campaign.html", "calls.html", "import_preview.html"):
        assert (ui / "templates" / name).is_file()
    for name in ("dashboard.js", "dashboard.css"):
        assert (ui / "static" / name).is_file()


def test_the_templates_escape_what_they_show() -> None:
    from dialer.api.ui.web import build_templates

    env = build_templates()
    rendered = env.from_string("{{ value }}").render(value="<script>x</script>")
    assert rendered == "&lt;script&gt;x&lt;/script&gt;"
    assert env.get_template("base.html").render(principal=None, request_path="/ui/login")
