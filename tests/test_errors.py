"""unitgen.errors.one_line: a message that quotes text from outside stays one line."""

import pytest

from unitgen.errors import one_line


@pytest.mark.parametrize(("text", "shown"), [
    ("a\nb", "a\\nb"),
    ("a\r\nb", "a\\r\\nb"),
    ("\x00\x07\x1b[31m\x7f", "\\x00\\x07\\x1b[31m\\x7f"),
    ("\x85\x96", "\\x85\\x96"),  # C1 controls, NEL among them
    ("\x0b\x0c\x1c\x1d\x1e", "\\x0b\\x0c\\x1c\\x1d\\x1e"),
    ("a\u2028b\u2029", "a\\u2028b\\u2029"),
    ("\t", "\\t"),
])
def test_breaks_and_controls_are_written_as_escapes(text, shown):
    assert one_line(text) == shown
    assert one_line(text).isprintable()


@pytest.mark.parametrize("text", ["", "alice", "/tmp/a b/k.pub", "ünï 😀", "%i $HOME 'q' \\",
                                  "tab\\there"])
def test_other_text_is_left_as_it_is(text):
    assert one_line(text) == text
