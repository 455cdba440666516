"""Calendar events and time spans: what unitgen accepts, systemd accepts too (checked with the
real systemd-analyze), and the examples of systemd.time(7) that unitgen's subset covers."""

import shutil
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unitgen import timespec

ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")
TOKENS = ["*", "-", ":", ",", "..", "/", "~", " ", "0", "1", "2", "3", "5", "9", "12", "31",
          "59", "2030", "Mon", "Fri", "Sun", "UTC", "daily", "weekly", "x"]
candidates = st.lists(st.sampled_from(TOKENS), min_size=1, max_size=9).map("".join)
spans = st.lists(st.sampled_from(["1", "30", "5", " ", "h", "min", "m", "s", "ms", "d", "w",
                                  "hr", "sec", "x", "0"]), min_size=1, max_size=6).map("".join)


def analyze(kind: str, text: str) -> bool:
    return subprocess.run([ANALYZE, kind, text], capture_output=True).returncode == 0


GOOD = ["daily", "weekly", "Mon..Fri *-*-* 03:00", "*-*-1 04:30 UTC", "Sun 03:00", "12-25",
        "2030-1-1", "*:0/15", "00:00:00", "*-*-* 03:00:00/5", "Sat,Sun 10:00"]
BAD = ["", "xyz", "daily ", " daily", "Mon,", "UTC", "25:00", "*-13-1", "Mon  03:00",
       "*-*-* 03:00 Europe/Berlin", "1/0:00", "5..2:00", "daily\nOnCalendar=hourly"]


@pytest.mark.parametrize("text", GOOD)
def test_the_subset_takes_the_usual_events(text):
    assert timespec.calendar(text)


@pytest.mark.parametrize("text", BAD)
def test_the_subset_refuses_what_it_does_not_know(text):
    assert not timespec.calendar(text)


@needs_analyze
@settings(max_examples=150, deadline=None)
@given(candidates)
def test_every_calendar_event_unitgen_accepts_systemd_accepts(text):
    if timespec.calendar(text):
        assert analyze("calendar", text), text


@needs_analyze
@settings(max_examples=100, deadline=None)
@given(spans)
def test_every_time_span_unitgen_accepts_systemd_accepts(text):
    if timespec.seconds(text) is not None:
        assert analyze("timespan", text), text


@pytest.mark.parametrize(("text", "seconds"), [("1h", 3600), ("30min", 1800), ("1h 30", 3630),
                                                ("2w", 1209600), ("500ms", 0.5)])
def test_spans_read_as_systemd_reads_them(text, seconds):
    assert timespec.seconds(text) == seconds


@pytest.mark.parametrize("text", ["", " ", "1y", "h", "99999999999w", "1h;reboot", "-1h"])
def test_what_is_no_span_or_beyond_a_year_is_refused(text):
    assert not timespec.span(text)
