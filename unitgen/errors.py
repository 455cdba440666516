"""The two ways a command fails, each with its exit status, and how a message given text
from outside stays one line."""

import unicodedata

# Control characters (C0, DEL, C1) and the line and paragraph separators: what may end or
# garble a line on a terminal or in a log.
BREAKS = ("Cc", "Zl", "Zp")


def one_line(text: str) -> str:
    """The text with each control character and line separator written as a Python string
    literal writes it (\\n, \\x1b, \\u2028), so that a message that quotes a name or path
    from outside stays one line and shows what it holds. Pure."""
    return "".join(repr(c)[1:-1] if unicodedata.category(c) in BREAKS else c for c in text)


class UnitgenError(Exception):
    """An expected failure: its message is one line that names the problem and the fix."""

    exit_code = 1


class BadInput(UnitgenError):
    """The input is wrong; nothing was changed."""

    exit_code = 2


class Failed(UnitgenError):
    """The input was fine but the operation could not be carried out."""

    exit_code = 1
