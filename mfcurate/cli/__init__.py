"""The ``mfcurate`` command line (typer + rich).

Each command lives in its own module of this package and exposes ``register(app)``; the
modules are discovered, so adding a command touches no shared file.  Heavy imports stay inside
command bodies so that ``mfcurate --help`` is fast.
"""

from __future__ import annotations

import importlib
import pkgutil

import typer

from mfcurate import __version__

app = typer.Typer(
    name="mfcurate",
    help="Curate public mitotic-figure datasets into one pan-cancer nuclei-mask dataset.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    rich_markup_mode="rich",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"mfcurate {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """mfcurate: ingest, mask, harvest, register, train, score, export and publish."""


def _register_commands() -> None:
    import mfcurate.cli as pkg

    for mod in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if mod.name.startswith("_"):
            continue
        module = importlib.import_module(f"mfcurate.cli.{mod.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(app)


_register_commands()


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point: run a command, turn click's usage errors into one line.

    Returns (and, as a script, exits with) the command's exit code: 0 success, 1 data or
    environment error, 2 usage error, 130 interrupted (see
    :func:`mfcurate.cli._common.reports_errors`).
    """
    import sys

    from typer import Abort

    from mfcurate.cli._common import err_console

    try:  # typer >= 0.20 vendors click
        from typer._click.exceptions import ClickException, UsageError
    except ImportError:  # pragma: no cover - older typer on a separate click
        from click.exceptions import ClickException, UsageError  # type: ignore[assignment]

    try:
        code = app(args=argv, prog_name="mfcurate", standalone_mode=False)
    except UsageError as exc:
        where = f" (see: {exc.ctx.command_path} --help)" if exc.ctx is not None else ""
        err_console.print(f"[red]error:[/red] {exc.format_message()}{where}", soft_wrap=True)
        code = 2
    except ClickException as exc:
        err_console.print(f"[red]error:[/red] {exc.format_message()}", soft_wrap=True)
        code = exc.exit_code
    except (Abort, KeyboardInterrupt):
        err_console.print("[red]interrupted[/red]")
        code = 130
    code = code if isinstance(code, int) else 0
    if argv is None:
        sys.exit(code)
    return code


__all__ = ["app", "main"]
