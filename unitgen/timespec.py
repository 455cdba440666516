"""systemd's calendar events (OnCalendar=) and time spans (RandomizedDelaySec=, idle times):
a strict subset of systemd.time(7), so that every value accepted here is one systemd
accepts too. Pure."""

import re

SHORTHANDS = frozenset("minutely hourly daily weekly monthly yearly annually quarterly "
                       "semiannually".split())
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
DAY = rf"(?:{'|'.join(DAYS)})"
WEEKDAYS = re.compile(rf"{DAY}(?:\.\.{DAY})?(?:,{DAY}(?:\.\.{DAY})?)*", re.ASCII)
# One component of a date or time: *, N, N..M, each optionally repeated every /K; a list of
# them with commas.
ITEM = r"(?:\*|\d{1,4}(?:\.\.\d{1,4})?)(?:/\d{1,4})?"
COMPONENT = re.compile(rf"{ITEM}(?:,{ITEM})*", re.ASCII)
RANGES = {"year": (1970, 2199), "month": (1, 12), "day": (1, 31), "hour": (0, 23),
          "minute": (0, 59), "second": (0, 59)}
SPAN = re.compile(r"\s*(\d{1,9})\s*(us|ms|sec|s|min|m|hr|h|d|w)?\s*", re.ASCII)
SECONDS = {"us": 1e-6, "ms": 1e-3, "s": 1, "sec": 1, "min": 60, "m": 60, "hr": 3600,
           "h": 3600, "d": 86400, "w": 604800, None: 1}
MAX_SPAN = 365 * 86400


def _component(text: str, field: str) -> bool:
    if not COMPONENT.fullmatch(text):
        return False
    low, high = RANGES[field]
    for item in text.split(","):
        span, _, step = item.partition("/")
        if step and int(step) == 0:
            return False
        numbers = [int(n) for n in span.split("..") if n != "*"]
        if any(not low <= n <= high for n in numbers) or numbers != sorted(numbers):
            return False
    return True


def _date(text: str) -> bool:
    parts = text.split("-")
    fields = {3: ("year", "month", "day"), 2: ("month", "day")}.get(len(parts))
    return fields is not None and all(map(_component, parts, fields))


def _time(text: str) -> bool:
    parts = text.split(":")
    fields = {3: ("hour", "minute", "second"), 2: ("hour", "minute")}.get(len(parts))
    return fields is not None and all(map(_component, parts, fields))


def calendar(text: str) -> bool:
    """Whether `text` is a calendar event of the subset: a shorthand such as daily, or
    [WEEKDAYS] [DATE] [TIME] [UTC], e.g. `Mon..Fri *-*-* 03:00` or `*-*-1 04:30 UTC`."""
    if text in SHORTHANDS:
        return True
    words = text.split(" ")
    if words and words[-1] == "UTC":
        words = words[:-1]
    if words and WEEKDAYS.fullmatch(words[0]):
        words = words[1:]
    if words and "-" in words[0] and _date(words[0]):
        words = words[1:]
    if words and _time(words[0]):
        words = words[1:]
    return not words and text.strip() == text and len(text.split(" ")) > len(words) \
        and text != "UTC"


WINDOW = re.compile(rf"(\*|{DAY}(?:,{DAY})*) (\d\d:\d\d) (.+)", re.ASCII)


def window(text: str) -> tuple[tuple[str, ...], str, int] | None:
    """A maintenance window `DAYS HH:MM LENGTH` (`Sun 03:00 2h`, `Sat,Sun 02:30 90min`, `*`
    for every day) as (days, start, minutes; no days meaning every day), or None."""
    match = WINDOW.fullmatch(text)
    if not match or not _time(match[2]):
        return None
    length = seconds(match[3])
    if length is None or not 1800 <= length <= 86400 or length % 60:
        return None
    days = () if match[1] == "*" else tuple(match[1].split(","))
    return days, match[2], int(length // 60)


def seconds(text: str) -> float | None:
    """A time span such as 1h, 30min or 1h 30min in seconds, or None when it is none. A
    number without a unit is seconds, as systemd reads it."""
    total, position = 0.0, 0
    while position < len(text):
        match = SPAN.match(text, position)
        if not match or match.end() == position:
            return None
        total += int(match[1]) * SECONDS[match[2]]
        position = match.end()
    return total if text.strip() else None


def span(text: str, least: float = 1) -> bool:
    """Whether `text` is a time span from `least` seconds to a year."""
    found = seconds(text)
    return found is not None and least <= found <= MAX_SPAN
