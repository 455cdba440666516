"""Where the templates and the image are: inside the installed package, or in the source tree."""

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def folder(name: str) -> Path:
    for candidate in (_PACKAGE / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"unitgen is installed without its {name}/ folder; reinstall it")
