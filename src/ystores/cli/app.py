"""The `ystore` application: global options and error handling.

Each command parses its arguments, calls one library function and renders the
result. Library errors become one line on stderr and exit code 1; usage errors
(a bad option value, a missing argument) one line and exit code 2; `--debug`
shows the traceback instead.
"""

from __future__ import annotations

import logging
import sys
from typing import Annotated, Any

import typer
from typer.core import TyperArgument, TyperGroup, TyperOption

from .common import call, library_errors, settings

__all__ = ["app", "call", "library_errors", "main"]


def _kinds(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


def _command(exc: Exception) -> str:
    """`ystore SUBCOMMAND` for the context an error was raised in."""
    names: list[str] = []
    ctx = getattr(exc, "ctx", None)
    while ctx is not None and ctx.parent is not None:
        names.insert(0, ctx.info_name or "")
        ctx = ctx.parent
    return " ".join(["ystore", *names])


class _PlainArgument(TyperArgument):
    """An argument shown as `TARGET` (or `[TARGET]`), without `{...}` or a `<str>` label."""

    def display_type_rich(self, ctx: Any) -> str | None:
        return None

    def _rich_display_name(self) -> str:
        return self.metavar or (self.name or "").upper()

    def _usage_display_name(self) -> str:
        name = self._rich_display_name()
        return name if self.required else f"[{name}]"


class _PlainOption(TyperOption):
    """An option's value shown as its metavar or its name (`--port PORT`), not `<int>`."""

    def display_type_rich(self, ctx: Any) -> str | None:
        if self.is_flag or self.count:
            return None
        return self.metavar or (self.name or "").upper()


class _Group(TyperGroup):
    """Usage errors as one line (`Error: ...`) instead of a usage block and a panel;
    parameters in help without type labels (`TARGET`, `--port PORT`)."""

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        for param in getattr(command, "params", ()):
            if type(param) is TyperArgument:
                param.__class__ = _PlainArgument
            elif type(param) is TyperOption:
                param.__class__ = _PlainOption
        return command

    def main(self, *args: Any, **kwargs: Any) -> Any:
        standalone = kwargs.pop("standalone_mode", True)
        kwargs["standalone_mode"] = False
        if not standalone:
            return super().main(*args, **kwargs)
        try:
            result = super().main(*args, **kwargs)
        except Exception as exc:  # typer's own copy of click's exceptions
            kinds = _kinds(exc)
            if "Abort" in kinds:
                typer.echo("Aborted.", err=True)
                sys.exit(1)
            if "ClickException" not in kinds:
                raise
            code = int(getattr(exc, "exit_code", 1))
            if "NoArgsIsHelpError" in kinds:
                exc.show()  # type: ignore[attr-defined]
                sys.exit(code)
            message = " ".join(exc.format_message().split())  # type: ignore[attr-defined]
            if "UsageError" in kinds:
                message = message.rstrip(".") + f" (see `{_command(exc)} --help`)."
            typer.echo(f"Error: {message}", err=True)
            sys.exit(code)
        sys.exit(result if isinstance(result, int) else 0)


app = typer.Typer(
    name="ystore",
    cls=_Group,
    help="Serve, inspect, migrate, compact and copy Y-CRDT (Yjs) document stores.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,  # plain help: no <bool>/<str> type labels, no boxes
)


_state = {"main": False}


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            number = version("ystores")
        except PackageNotFoundError:  # pragma: no cover - running from a source tree
            number = "unknown"
        typer.echo(f"ystore (ystores) {number}")
        raise typer.Exit()


@app.callback()
def _global_options(
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks on errors.")] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log warnings and progress.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the version and exit.", callback=_version, is_eager=True
        ),
    ] = False,
) -> None:
    settings["debug"] = debug
    settings["verbose"] = verbose
    if _state["main"]:  # the `ystore` process (not a test runner invoking `app`)
        # Here rather than in main(), so that `ystore --help` does not load the engine.
        from ..crdt import quiet_engine_panics

        quiet_engine_panics()  # a poisoned record is one line of error, not a Rust backtrace
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(message)s")


def main() -> None:
    """Entry point of the `ystore` console script."""
    from . import commands  # noqa: F401 - registers the commands on `app`

    _state["main"] = True
    app()
