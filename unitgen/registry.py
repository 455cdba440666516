"""The registry as TOML text: the global config and one file per person. Pure."""

import tomllib
from dataclasses import asdict, fields

import tomli_w

from unitgen import validate
from unitgen.errors import BadInput
from unitgen.model import Person, Settings


def _table(text: str, where: str) -> dict:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as problem:
        raise BadInput(f"{where}: not valid TOML ({problem}); fix the file") from None


def load_settings(text: str | None, where: str) -> Settings:
    return validate.settings(_table(text, where), where) if text else Settings()


def dump_settings(settings: Settings) -> str:
    return tomli_w.dumps(asdict(settings))


def load_person(name: str, text: str, where: str) -> Person:
    return validate.person(name, _table(text, where), where)


def dump_person(person: Person) -> str:
    table = {f.name: getattr(person, f.name) for f in fields(Person)}
    del table["name"]
    table["keys"] = [key.line for key in person.keys]
    return tomli_w.dumps({k: v for k, v in table.items() if v is not None})
