"""The command line's frame: the Typer app, where a command acts, printing, and main(), which
turns every expected failure into one line and its exit status."""

import sys
from dataclasses import dataclass
from pathlib import Path

import typer

from unitgen import edge, ops, options
from unitgen.errors import BadInput, UnitgenError, one_line
from unitgen.files import Root
from unitgen.model import Host

app = typer.Typer(
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="SSH developer workspaces, one container per person, supervised by systemd.",
)
image_app = typer.Typer(no_args_is_help=True, help="The workspace image.")
app.add_typer(image_app, name="image")
key_app = typer.Typer(no_args_is_help=True, help="A person's ssh keys, changed without a "
                      "restart: the workspace reads them at each login.")
app.add_typer(key_app, name="key")


@dataclass(frozen=True)
class Target:
    """Where a command acts: the files under the root, and the host's systemd and engine
    (or, under a root other than /, nothing but the files)."""

    root: Root
    edge: edge.Live

    def live(self, what: str) -> None:
        if not self.edge.live:
            raise BadInput(f"{what} needs the engine and systemd; leave out --root")

    def host(self) -> Host:
        with self.root.locked(shared=True):
            return ops.load(self.root)


def echo(output: str | list[str]) -> None:
    """Print JSON text, or lines."""
    for line in [output] if isinstance(output, str) else output:
        typer.echo(line)


@app.callback()
def common(ctx: typer.Context, root: options.Root = Path("/")) -> None:
    files = Root(root)
    ctx.obj = Target(files, edge.for_root(files.live))


def main() -> None:
    try:
        code = app(standalone_mode=False)
    except UnitgenError as problem:
        fail(str(problem), problem.exit_code)
    except typer.TyperException as problem:
        message = problem.format_message()
        if "\n" in message:  # a command given no arguments answers with its help
            typer.echo(message)
            sys.exit(0)
        context = getattr(problem, "ctx", None)
        hint = f"; see: {context.command_path} --help" if context else ""
        fail(message.rstrip(".") + hint, problem.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        fail("interrupted", 130)
    sys.exit(code if isinstance(code, int) else 0)


def fail(message: str, status_code: int) -> None:
    """One line, whatever names or paths from outside the message quotes."""
    print(f"unitgen: error: {one_line(message)}", file=sys.stderr)
    sys.exit(status_code)
