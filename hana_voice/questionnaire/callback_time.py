"""When a caller asked to be called back, as a time: pure, resolved against the call's start.

:func:`resolve_callback` reads the time words of one answer ("بعد ساعة", "بكرة المسا",
"كلمني الساعة خمسة العصر", "بعد عشرين دقيقة") and turns them into an aware ``datetime``
relative to when the call started. Days and parts of the day are those of the hospital's
clock, ``CALLBACK_TIMEZONE`` (default ``Asia/Riyadh``, UTC+3 all year): "tomorrow evening"
said at 23:30 UTC is the Riyadh day after 02:30, not the UTC one. What it understands:

- a duration after "بعد"/"خلال"/"كمان": minutes, hours, days, with digits or Arabic number
  words ("بعد ساعتين", "بعد ٥ دقايق", "بعد نص ساعة", "بعد ساعة ونص", "بعد يومين");
- a day: today, tomorrow ("بكرة", "غدًا", "باچر"), the day after ("بعد بكرة");
- a part of the day: morning 09:00, forenoon 10:00, noon 13:00 (after noon 15:00), afternoon
  ("العصر") 16:00 (after it 17:00), sunset 18:00 (after it 19:00), evening 18:00, night prayer
  20:00 (after it 21:00), night 21:00;
- a clock hour: "الساعة خمسة" (with "ونص", "وربع", "إلا ربع"); without a part of the day the
  hour is read as the next one from 08:00 to 21:59 (five at 14:00 is 17:00, ten at 14:00 is
  tomorrow's 10:00).

A day alone ("بكرة") keeps the call's own time of day. A time already past today (said with
"today" or with no day) is the same time tomorrow. Words with no time in them ("بعدين",
"بعد شوي") resolve to
``None``: the caller wants a call-back, and the campaign chooses when.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from hana_voice.questionnaire import lexicon
from hana_voice.questionnaire.normalize import normalize, tokens

DEFAULT_TIMEZONE = "Asia/Riyadh"
#: Hours a bare clock hour may mean, when no part of the day is said.
CALLING_HOURS = (8, 21)


def _fold(*phrases: str) -> tuple[tuple[str, ...], ...]:
    return tuple(tuple(normalize(p).split()) for p in phrases)


_NUMBERS: dict[str, int] = {
    normalize(w): n
    for table in (lexicon.NUMBER_WORDS, lexicon.LARGE_NUMBERS)
    for n, words in table.items()
    for w in words
}
_AFTER = frozenset(normalize(w) for w in ("بعد", "خلال", "كمان"))
# Units: minutes per unit; a dual form carries its own count.
_UNITS: dict[str, tuple[int, int]] = {
    **{normalize(w): (1, 1) for w in ("دقيقة", "دقيقه", "دقايق", "دقائق", "دقيقة")},
    **{normalize(w): (1, 2) for w in ("دقيقتين", "دقيقتان")},
    **{normalize(w): (60, 1) for w in ("ساعة", "ساعه", "ساعات")},
    **{normalize(w): (60, 2) for w in ("ساعتين", "ساعتان")},
    **{normalize(w): (1440, 1) for w in ("يوم", "ايام", "أيام")},
    **{normalize(w): (1440, 2) for w in ("يومين", "يومان")},
}
_HALF = frozenset(normalize(w) for w in ("نص", "نصف"))
_QUARTER = frozenset(normalize(w) for w in ("ربع",))
_AND_HALF = frozenset(normalize(w) for w in ("ونص", "ونصف", "والنص"))
_AND_QUARTER = frozenset(normalize(w) for w in ("وربع", "والربع"))
_LESS_QUARTER = _fold("الا ربع", "إلا ربع", "لا ربع")
_CLOCK = frozenset(normalize(w) for w in ("الساعة", "الساعه", "ساعة", "ساعه"))

_DAY_AFTER = _fold("بعد بكرة", "بعد بكره", "بعد بكرا", "بعد غد", "بعد غدا", "بعد باكر", "بعد باچر")
_TOMORROW = _fold("بكرة", "بكره", "بكرا", "باكر", "باچر", "غدا", "غدًا", "الغد", "غدوة")
_DAYS: dict[tuple[str, ...], int] = {
    **dict.fromkeys(_DAY_AFTER, 2),
    **dict.fromkeys(_TOMORROW, 1),
    **dict.fromkeys(_fold("اليوم", "هاليوم"), 0),
}
_EVENING = _fold("المسا", "المساء", "مساء", "مساءً", "بالمسا", "آخر النهار", "اخر النهار",
                 "آخر اليوم", "عشية")  # fmt: skip
# Part of the day -> (hour, minute); "after X" comes first so that it wins over "X".
_PARTS: dict[tuple[str, ...], tuple[int, int]] = {
    **dict.fromkeys(_fold("بعد الظهر", "بعد الظهرية"), (15, 0)),
    **dict.fromkeys(_fold("بعد العصر", "بعد صلاة العصر"), (17, 0)),
    **dict.fromkeys(_fold("بعد المغرب", "بعد صلاة المغرب"), (19, 0)),
    **dict.fromkeys(_fold("بعد العشا", "بعد العشاء", "بعد صلاة العشاء"), (21, 0)),
    **dict.fromkeys(_fold("الصبح", "الصباح", "صباحا", "صباحًا", "بالصباح", "الفجر"), (9, 0)),
    **dict.fromkeys(_fold("الضحى", "الضحي"), (10, 0)),
    **dict.fromkeys(_fold("الظهر", "الظهرية", "ظهرا"), (13, 0)),
    **dict.fromkeys(_fold("العصر", "العصرية", "عصرا"), (16, 0)),
    **dict.fromkeys(_fold("المغرب"), (18, 0)),
    **dict.fromkeys(_EVENING, (18, 0)),
    **dict.fromkeys(_fold("العشا", "العشاء"), (20, 0)),
    **dict.fromkeys(_fold("الليل", "بالليل", "الليلة", "ليلا", "ليلًا"), (21, 0)),
}
# Parts after noon: a clock hour under 12 said with one of these is p.m.
_PM_FROM = 12


def timezone_named(name: str) -> tzinfo:
    """The zone called ``name``; ValueError naming it when the system does not know it."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}: {exc}") from None


@dataclass(frozen=True)
class _Said:
    """The time words found in one answer."""

    minutes_after: int | None = None
    day: int | None = None
    part: tuple[int, int] | None = None
    clock: tuple[int, int] | None = None


def resolve_callback(text: str, started_at: datetime, zone: tzinfo | str = DEFAULT_TIMEZONE
                     ) -> datetime | None:  # fmt: skip
    """The time ``text`` asks to be called back at, or None when it names no time.

    ``started_at`` must be aware (the call's start); the result is in ``zone``, to the minute.
    """
    if started_at.tzinfo is None:
        raise ValueError("started_at must carry a time zone")
    tz = timezone_named(zone) if isinstance(zone, str) else zone
    now = started_at.astimezone(tz)
    said = _parse(tokens(text))
    if said.minutes_after is not None:
        return (now + timedelta(minutes=said.minutes_after)).replace(second=0, microsecond=0)
    if said.day is None and said.part is None and said.clock is None:
        return None
    day = now.date() + timedelta(days=said.day or 0)
    if said.clock is not None:
        return _at_clock(now, day, said)
    at = said.part or (now.hour, now.minute)
    result = _on(day, at, tz)
    if result <= now and not said.day:
        result = _on(day + timedelta(days=1), at, tz)
    return result


def _on(day: date, at: tuple[int, int], tz: tzinfo) -> datetime:
    return datetime.combine(day, time(at[0] % 24, at[1]), tz)


def _at_clock(now: datetime, day: date, said: _Said) -> datetime:
    assert said.clock is not None
    hour, minute = said.clock
    tz = now.tzinfo
    assert tz is not None
    if said.part is not None:
        if said.part[0] >= _PM_FROM and hour < 12:
            hour += 12
        result = _on(day, (hour, minute), tz)
        if result <= now and not said.day:
            result = _on(day + timedelta(days=1), (hour, minute), tz)
        return result
    hours = [hour] if hour >= 12 else [hour, hour + 12]
    candidates = [
        _on(day + timedelta(days=offset), (h, minute), tz) for offset in range(2) for h in hours
    ]
    later = [c for c in candidates if c > now or said.day]
    usual = [c for c in later if CALLING_HOURS[0] <= c.hour <= CALLING_HOURS[1]]
    return (usual or later)[0]


def _parse(words: Sequence[str]) -> _Said:
    minutes: int | None = None
    day: int | None = None
    part: tuple[int, int] | None = None
    clock: tuple[int, int] | None = None
    i = 0
    while i < len(words):
        found = _match(words, i, _DAYS)
        if found:
            day, i = _DAYS[found], i + len(found)
            continue
        found = _match(words, i, _PARTS)
        if found:
            part, i = _PARTS[found], i + len(found)
            continue
        if words[i] in _AFTER:
            duration, used = _duration(words[i + 1 :])
            if duration is not None:
                minutes, i = duration, i + 1 + used
                continue
        if words[i] in _CLOCK:
            hour, used = _clock(words[i + 1 :])
            if hour is not None:
                clock, i = hour, i + 1 + used
                continue
        i += 1
    return _Said(minutes, day, part, clock)


def _match(words: Sequence[str], i: int, table: Mapping[tuple[str, ...], object]
           ) -> tuple[str, ...] | None:  # fmt: skip
    for size in (3, 2, 1):
        key = tuple(words[i : i + size])
        if len(key) == size and key in table:
            return key
    return None


def _number(word: str) -> int | None:
    if word.isdigit():
        return int(word)
    return _NUMBERS.get(word)


def _duration(words: Sequence[str]) -> tuple[int | None, int]:
    """Minutes of "ساعتين", "5 دقايق", "نص ساعة", "ساعة ونص" at the start of ``words``."""
    if not words:
        return None, 0
    first = words[0]
    if first in _HALF | _QUARTER and len(words) > 1 and words[1] in _UNITS:
        per, _ = _UNITS[words[1]]
        return (per // 2 if first in _HALF else per // 4), 2
    count = _number(first)
    at = 1 if count is not None else 0
    if at >= len(words) or words[at] not in _UNITS:
        return None, 0
    per, dual = _UNITS[words[at]]
    total = per * (count if count is not None else dual)
    used = at + 1
    if used < len(words) and words[used] in _AND_HALF:
        total, used = total + per // 2, used + 1
    elif used < len(words) and words[used] in _AND_QUARTER:
        total, used = total + per // 4, used + 1
    return total, used


def _clock(words: Sequence[str]) -> tuple[tuple[int, int] | None, int]:
    """The hour after "الساعة": "خمسة", "5", "سبعة ونص", "تسعة إلا ربع"."""
    if not words:
        return None, 0
    hour = _number(words[0])
    if hour is None or not 1 <= hour <= 24:
        return None, 0
    used, minute = 1, 0
    rest = tuple(words[1:3])
    if rest[:1] and rest[0] in _AND_HALF:
        minute, used = 30, 2
    elif rest[:1] and rest[0] in _AND_QUARTER:
        minute, used = 15, 2
    elif rest in _LESS_QUARTER:
        hour, minute, used = hour - 1, 45, 3
    return (hour % 24, minute), used
