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


def main() -> None:
    """Console-script entry point."""
    app()


__all__ = ["app", "main"]
