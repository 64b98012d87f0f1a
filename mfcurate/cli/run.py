"""``mfcurate run RECIPE.toml [--from STEP] [--set KEY=VALUE ...]``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mfcurate.cli._common import SchedulerOpt, console, reports_errors


def register(app: typer.Typer) -> None:
    """Attach the command to the app."""
    app.command(
        "run",
        help="Run a pipeline recipe (sources + steps with their options); steps already "
             "done with the same options are skipped.\n\n"
             "Example: [bold]mfcurate run pipelines/omgnet-pancancer.toml --work-dir "
             "/data/omgnet[/bold]\n\n"
             "Example: [bold]mfcurate run pipelines/demo.toml --from report --set "
             "steps.report.examples_per_label=8[/bold]",
    )(run)


@reports_errors
def run(
    recipe: Annotated[Path | None, typer.Argument(help="Recipe TOML file.",
                                                  show_default=False)] = None,
    from_step: Annotated[str | None, typer.Option(
        "--from", help="Re-run this step and every step after it.")] = None,
    work_dir: Annotated[Path | None, typer.Option(help="Override [run] work_dir.")] = None,
    set_: Annotated[list[str] | None, typer.Option(
        "--set", help="Override KEY=VALUE: a [run] key, steps.NAME.OPTION or "
                      "sources.KEY.root (repeatable; VALUE is TOML).")] = None,
    workers: Annotated[int | None, typer.Option(
        "--workers", "-j", min=1, help="Override [run] workers.")] = None,
    scheduler: SchedulerOpt = None,
    seed: Annotated[int | None, typer.Option(help="Override [run] seed.")] = None,
    quick: Annotated[bool, typer.Option(
        "--quick", help="The short, CPU-sized version of the recipe ([run] preset = quick): "
                        "small patches, 3 short epochs, 1 seed, 2 test images.")] = False,
    list_steps: Annotated[bool, typer.Option(
        "--list-steps", help="List the registered steps and exit.")] = False,
) -> None:
    """Run the recipe."""
    from mfcurate.pipelines.steps import all_steps
    from mfcurate.recipe import parse_set_option, run_recipe

    if list_steps:
        for name, fn in sorted(all_steps().items()):
            doc = (fn.__doc__ or "").strip().splitlines()
            console.print(f"[bold]{name}[/bold]  {doc[0] if doc else ''}")
        return
    if recipe is None:
        from mfcurate.errors import UsageError

        raise UsageError("give a recipe file, e.g. pipelines/demo.toml")
    overrides: dict[str, object] = dict(parse_set_option(s) for s in set_ or [])
    if work_dir is not None:
        overrides["work_dir"] = str(work_dir.resolve())
    if workers is not None:
        overrides["workers"] = workers
    if scheduler is not None:
        overrides["scheduler"] = scheduler
    if seed is not None:
        overrides["seed"] = seed
    if quick:
        overrides["preset"] = "quick"
    result = run_recipe(recipe, overrides=overrides, from_step=from_step, console=console)
    ran = [s["name"] for s in result["steps"] if s["status"] == "ran"]
    skipped = [s["name"] for s in result["steps"] if s["status"] == "skipped"]
    console.print(f"[green]recipe done[/green]: ran {', '.join(ran) or 'nothing'}"
                  f"{'; skipped ' + ', '.join(skipped) if skipped else ''}; "
                  f"work dir {result['work_dir']}")
