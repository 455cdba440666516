"""The command line: each command parses, makes one call into the core or unitgen.ops, and
prints. The commands live in the modules of this package, by what they concern; importing a
module registers its commands, so the imports below are in the order `unitgen --help` lists."""

# isort: off
from unitgen.cli import people, data, views, host, fleet
# isort: on
from unitgen.cli.app import app, main

__all__ = ["app", "data", "fleet", "host", "main", "people", "views"]
