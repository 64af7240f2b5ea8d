"""Call-back times resolved against the call's start, on the hospital's clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hana_voice.questionnaire.callback_time import resolve_callback, timezone_named

RIYADH = timezone(timedelta(hours=3))
#: 14:00 in Riyadh, a Tuesday.
START = datetime(2026, 12, 1, 11, 0, tzinfo=UTC)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=RIYADH)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("بعد ساعة", at(1, 15)),
        ("كلمني بعد ساعتين", at(1, 16)),
        ("بعد ثلاث ساعات", at(1, 17)),
        ("بعد ٥ دقايق", at(1, 14, 5)),
        ("اتصل بعد عشر دقائق", at(1, 14, 10)),
        ("بعد عشرين دقيقة", at(1, 14, 20)),
        ("بعد نص ساعة", at(1, 14, 30)),
        ("بعد ربع ساعة", at(1, 14, 15)),
        ("بعد ساعة ونص", at(1, 15, 30)),
        ("بعد يومين", at(3, 14)),
        ("بكرة المسا", at(2, 18)),
        ("غدًا صباحًا", at(2, 9)),
        ("باچر العصر", at(2, 16)),
        ("بكرة", at(2, 14)),
        ("بعد بكرة الصبح", at(3, 9)),
        ("المسا", at(1, 18)),
        ("الصبح", at(2, 9)),  # morning already past: tomorrow's
        ("اليوم الظهر", at(2, 13)),
        ("بعد المغرب", at(1, 19)),
        ("دق علي بعد العشا", at(1, 21)),
        ("الليلة", at(1, 21)),
        ("كلمني الساعة خمسة", at(1, 17)),
        ("الساعة عشرة", at(2, 10)),  # 22:00 is too late to call: tomorrow's ten
        ("الساعة ١٠ الصبح", at(2, 10)),
        ("الساعة سبعة ونص المسا", at(1, 19, 30)),
        ("الساعة تسعة إلا ربع بالليل", at(1, 20, 45)),
        ("بكرة الساعة أربعة العصر", at(2, 16)),
        ("بكرة الساعة اتنين", at(2, 14)),
    ],
)
def test_resolves_against_the_start(text: str, expected: datetime) -> None:
    assert resolve_callback(text, START) == expected


@pytest.mark.parametrize("text", ["بعدين", "بعد شوي", "مشغول", "كلمني وقت ثاني", ""])
def test_no_time_said_is_none(text: str) -> None:
    assert resolve_callback(text, START) is None


def test_days_are_the_hospitals_days() -> None:
    # 23:30 UTC on the 1st is 02:30 on the 2nd in Riyadh: "tomorrow" is the 3rd there.
    late = datetime(2026, 12, 1, 23, 30, tzinfo=UTC)
    assert resolve_callback("بكرة المسا", late) == at(3, 18)
    assert resolve_callback("بكرة المسا", late, "UTC") == datetime(2026, 12, 2, 18, tzinfo=UTC)
    result = resolve_callback("بعد ساعة", late, "Europe/London")
    assert result is not None and result.isoformat() == "2026-12-02T00:30:00+00:00"


def test_a_naive_start_or_unknown_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="time zone"):
        resolve_callback("بعد ساعة", datetime(2026, 12, 1, 11, 0))
    with pytest.raises(ValueError, match="Mars/Olympus"):
        timezone_named("Mars/Olympus")


@given(st.datetimes(timezones=st.just(UTC)), st.sampled_from(
    ["بكرة المسا", "المسا", "الساعة خمسة", "بعد ساعة", "الصبح", "الساعة عشرة", "اليوم"]
))  # fmt: skip
def test_a_resolved_time_is_never_before_the_start(start: datetime, text: str) -> None:
    result = resolve_callback(text, start)
    assert result is not None and result >= start
    assert result - start <= timedelta(days=2, hours=1)
