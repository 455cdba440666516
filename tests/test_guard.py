"""The guard at the edge of rendering, on its own: whatever a value holds, it is written into
a file as exactly one value of its kind, or refused with one line."""

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.helpers import assert_message
from unitgen import guard
from unitgen.errors import BadInput

KINDS = ["unit", "env", "script", "rules", "keys"]
BREAKS = ["\n", "\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029",
          "\x00", "\x7f", "\x1b"]
hostile = st.text(alphabet=st.sampled_from([*BREAKS, *string.printable, "%", "$", "é", "\u200d"]),
                  max_size=40)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("brk", BREAKS)
def test_no_line_break_or_control_character_passes_into_any_file(kind, brk):
    with pytest.raises(BadInput) as refused:
        guard.check(f"fe80::1%x{brk}Evil=1", kind)
    assert_message(str(refused.value), "line break or a control character",
                   "fix the value that gave it")


@given(hostile, st.sampled_from(KINDS))
def test_what_passes_is_one_line_and_what_fails_is_one_line(value, kind):
    try:
        written = guard.check(value, kind)
    except BadInput as refused:
        assert "\n" not in str(refused) and "\r" not in str(refused)
        return
    assert written.splitlines() in ([], [written])
    assert not any(c in written for c in BREAKS)


@given(st.text(alphabet="%$abc:/", max_size=20))
def test_a_unit_value_can_name_no_specifier_and_no_variable(value):
    written = guard.check(value, "unit")
    assert written.replace("%%", "").replace("$$", "").count("%") == 0
    assert written.replace("$$", "").count("$") == 0
    assert written.replace("%%", "%").replace("$$", "$") == value


@pytest.mark.parametrize(("value", "kind"), [
    ('a"b', "unit"), ("a'b", "unit"), ("a\\b", "unit"),
    ("x;reboot", "env"), ("$(id)", "env"), ("`id`", "env"), ("-v/:/host", "env"), ('"', "env"),
    ("a b", "script"), ("a;b", "script"), ("-x", "script"),
    ("10.0.0.0/8 -j ACCEPT", "rules"), ("-A", "rules"), ('"', "rules"),
])
def test_what_would_change_meaning_in_its_file_is_refused(value, kind):
    with pytest.raises(BadInput):
        guard.check(value, kind)


@pytest.mark.parametrize(("value", "kind"), [
    ("registry.example.com:5000/team/ws@sha256:" + "a" * 64, "env"), ("[::1]:2200:22", "env"),
    ("1h 30min", "env"), ("Mon..Fri *-*-* 03:00", "unit"), ("2001:db8::/32", "rules"),
    ("ssh-ed25519 AAAA alice@laptop 👩\u200d💻", "keys"), ("units/libexec/backup", "script"),
])
def test_the_values_unitgen_writes_pass(value, kind):
    assert guard.check(value, kind) == value


def test_each_template_has_its_kind():
    assert [guard.kind_of(t) for t in ("wormhole@.service", "person.env.j2", "libexec/backup",
                                        "firewall/libexec/firewall", "firewall/rules.v4",
                                        "internal/rules", "authorized_keys.j2",
                                        "proxy.socket.j2")] == [
        "unit", "env", "script", "script", "rules", "rules", "keys", "unit"]
