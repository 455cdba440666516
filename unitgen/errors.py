"""The two ways a command fails, each with its exit status."""


class UnitgenError(Exception):
    """An expected failure: its message is one line that names the problem and the fix."""

    exit_code = 1


class BadInput(UnitgenError):
    """The input is wrong; nothing was changed."""

    exit_code = 2


class Failed(UnitgenError):
    """The input was fine but the operation could not be carried out."""

    exit_code = 1
