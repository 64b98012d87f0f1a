"""Recipes: a TOML file naming the sources and the steps of a pipeline run.

A recipe looks like::

    [run]
    work_dir = "omgnet-work"   # relative to the recipe file's folder
    dataset = "dataset"        # relative to work_dir (the default)
    seed = 0
    scheduler = ""             # Dask scheduler address; "" = local processes
    workers = 2

    [[sources]]
    key = "midog++"
    root = "sources/midogpp"   # relative to work_dir
    options = {}

    [steps.ingest]
    [steps.refine-masks]
    segmenter = "sam"
    [steps.report]
    out = "report.html"

Steps run in the order the recipe lists them.  A step may appear more than once under a
label, ``[steps."train-classifier:rgb"]`` (the step ``train-classifier``, label ``rgb``), so one
recipe can run both arms of an ablation; a labelled ``score`` step files its per-seed score
files under the label for a later ``compare`` step.

``[run] preset`` is ``"paper"`` (default) or ``"quick"`` (``mfcurate run --quick``).  A paper
run of a recipe that trains or segments with SAM on a machine without a GPU stops before the
first step and says what it would do and roughly how long it would take (unless
``[run] allow_cpu = true``); it never drops to the quick preset silently.  ``[run] holdout``
(``["SOURCE:SPLIT", ...]``) is the default holdout of ``build-patches`` and
``train-classifier``, and ``[run] test_set`` (``{only_sources = [...], species = [...],
tumour_types = [...]}``) the default images of ``detect`` and ``score``, so an ablation names
its partitions once.

Relative paths (``work_dir``-relative) are resolved for source roots and for step options
whose name looks like a path (``out``, ``root``, ``checkpoint``, ``*_dir``, ``*_path``,
``*_file``...).  The sources are handed to every step as ``ctx.state["sources"]`` (a list
of ``{key, root, options}``) and, if the step function takes a ``sources`` argument, as that
argument.

A run log (``WORK_DIR/run-log.json``) records each finished step with the hash of its
options; a rerun skips steps whose options did not change, unless an earlier step ran again
or ``from_step`` names it or an earlier step.  What steps put in ``ctx.state`` is kept in the
log too, so a skipped step's hand-over values reach the steps after it.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import inspect
import json
import time
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from mfcurate.dataset import atomic_write_json
from mfcurate.errors import MfcurateError, UsageError
from mfcurate.pipelines.steps import StepContext, StepFn, all_steps
from mfcurate.ui import SafeConsole

RUN_LOG = "run-log.json"
#: Pipeline order of the known steps (a recipe may list any registered subset).
CANONICAL_ORDER = ("ingest", "refine-masks", "harvest", "register-phh3", "build-patches",
                   "train-classifier", "detect", "score", "compare", "export", "report",
                   "publish")
_PATH_KEYS = {"out", "root", "checkpoint", "dir", "path", "file", "out_dir", "model",
              "pretrained"}
_PATH_SUFFIXES = ("_dir", "_path", "_file", "_root", "_checkpoint")


class RecipeError(MfcurateError, ValueError):
    """The recipe file is missing, malformed, or names something unknown."""


@dataclass
class Recipe:
    """A parsed recipe.

    Attributes:
        path: the recipe file (None when built in code).
        run: the ``[run]`` table.
        sources: the ``[[sources]]`` entries (``key``, ``root``, ``options``).
        steps: step name -> options, in run order.
    """

    path: Path | None
    run: dict[str, Any] = field(default_factory=dict)
    sources: list[dict[str, Any]] = field(default_factory=list)
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path | str) -> Recipe:
        """Read a recipe TOML file."""
        p = Path(path)
        try:
            data = tomllib.loads(p.read_text())
        except FileNotFoundError:
            raise RecipeError(f"{p}: recipe file does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise RecipeError(f"{p}: invalid TOML ({exc})") from None
        return cls.from_dict(data, p)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], path: Path | None = None) -> Recipe:
        """Build from a dict shaped like the TOML file."""
        where = str(path) if path else "recipe"
        unknown = sorted(set(data) - {"run", "sources", "steps", "name", "description"})
        if unknown:
            raise RecipeError(f"{where}: unknown top-level table(s) {', '.join(unknown)} "
                              "(expected run, sources, steps)")
        run = dict(data.get("run", {}))
        sources = []
        for n, s in enumerate(data.get("sources", [])):
            if not isinstance(s, Mapping) or "key" not in s or "root" not in s:
                raise RecipeError(f"{where}: sources[{n}] needs 'key' and 'root'")
            sources.append({"key": str(s["key"]), "root": str(s["root"]),
                            "options": dict(s.get("options", {}))})
        steps = data.get("steps", {})
        if not isinstance(steps, Mapping):
            raise RecipeError(f"{where}: [steps] must be a table of [steps.<name>] tables")
        return cls(path, run, sources, {str(k): dict(v or {}) for k, v in steps.items()})


def _parse_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse_set_option(item: str) -> tuple[str, Any]:
    """Parse a CLI ``--set KEY=VALUE`` (VALUE as a TOML value, else a string)."""
    if "=" not in item:
        raise UsageError(f"--set {item!r} is not KEY=VALUE")
    k, v = item.split("=", 1)
    return k.strip(), _parse_value(v.strip())


def apply_overrides(recipe: Recipe, overrides: Mapping[str, Any]) -> Recipe:
    """A copy of the recipe with overrides applied.

    Keys: ``work_dir``, ``dataset``, ``seed``, ``scheduler``, ``workers`` (the ``[run]``
    table, also as ``run.<key>``), ``steps.<name>.<option>``, ``sources.<key>.root`` /
    ``sources.<key>.options.<opt>``.
    """
    r = copy.deepcopy(recipe)
    for key, value in overrides.items():
        parts = key.split(".")
        if parts[0] == "run":
            parts = parts[1:]
        if len(parts) == 1:
            r.run[parts[0]] = value
        elif parts[0] == "steps" and len(parts) >= 3:
            name = parts[1]
            if name not in r.steps:
                raise UsageError(f"override {key}: the recipe has no step {name!r} "
                                 f"(has {', '.join(r.steps)})")
            _set_nested(r.steps[name], parts[2:], value)
        elif parts[0] == "sources" and len(parts) >= 3:
            match = [s for s in r.sources if s["key"] == parts[1]]
            if not match:
                raise UsageError(f"override {key}: the recipe has no source {parts[1]!r}")
            _set_nested(match[0], parts[2:], value)
        else:
            raise UsageError(f"override {key!r}: use run keys, steps.<name>.<option> or "
                             "sources.<key>.<field>")
    return r


def _set_nested(d: dict[str, Any], parts: list[str], value: Any) -> None:
    for p in parts[:-1]:
        d = d.setdefault(p, {})
    d[parts[-1]] = value


def _is_path_key(key: str) -> bool:
    return key in _PATH_KEYS or key.endswith(_PATH_SUFFIXES)


def _resolve(value: Any, base: Path) -> Any:
    if isinstance(value, str) and value and "://" not in value:
        p = Path(value).expanduser()
        return str(p if p.is_absolute() else (base / p).resolve())
    return value


def resolve_paths(options: Mapping[str, Any], base: Path) -> dict[str, Any]:
    """Resolve path-like options (see module docstring) against ``base``."""
    out: dict[str, Any] = {}
    for k, v in options.items():
        if _is_path_key(k):
            out[k] = [_resolve(x, base) for x in v] if isinstance(v, list) else _resolve(v, base)
        else:
            out[k] = v
    return out


def _hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _jsonable(state: Mapping[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(state, default=str))


def run_recipe(path_or_recipe: Path | str | Recipe, *,
               overrides: Mapping[str, Any] | None = None, from_step: str | None = None,
               console: Console | None = None) -> dict[str, Any]:
    """Run a recipe's steps in order, skipping those already done with the same options.

    Args:
        path_or_recipe: a recipe file or a :class:`Recipe`.
        overrides: see :func:`apply_overrides` (e.g. ``{"work_dir": DIR}``).
        from_step: re-run this step and every step after it.
        console: where to print progress.

    Returns:
        ``{"work_dir", "dataset", "steps": [{"name", "status", "seconds", "summary"}]}``.

    Raises:
        RecipeError: unknown steps (the message lists the registered ones) or bad options.
    """
    con = console or SafeConsole()
    recipe = path_or_recipe if isinstance(path_or_recipe, Recipe) \
        else Recipe.load(path_or_recipe)
    if overrides:
        recipe = apply_overrides(recipe, overrides)
    where = str(recipe.path) if recipe.path else "recipe"
    registry = _check_steps(recipe, where, from_step)
    base = recipe.path.parent.resolve() if recipe.path else Path.cwd()
    work_dir = Path(_resolve(str(recipe.run.get("work_dir", "work")), base))
    work_dir.mkdir(parents=True, exist_ok=True)
    dataset = Path(_resolve(str(recipe.run.get("dataset", "dataset")), work_dir))
    sources = [{"key": s["key"], "root": _resolve(s["root"], work_dir),
                "options": s["options"]} for s in recipe.sources]
    ctx = StepContext(dataset=dataset, work_dir=work_dir, console=con,
                      scheduler=str(recipe.run.get("scheduler") or "") or None,
                      workers=int(recipe.run.get("workers", 1)),
                      seed=int(recipe.run.get("seed", 0)))
    log_path = work_dir / RUN_LOG
    log = _load_log(log_path)
    ctx.state.update(log.get("state", {}))
    ctx.state["sources"] = sources
    ctx.state["preset"] = preset = str(recipe.run.get("preset", "paper"))
    ctx.state["holdout"] = recipe.run.get("holdout")
    ctx.state["test_set"] = dict(recipe.run.get("test_set") or {})
    if preset not in ("paper", "quick", "auto"):
        raise RecipeError(f"{where}: [run] preset must be paper, quick or auto (got {preset!r})")
    if preset == "paper" and not recipe.run.get("allow_cpu"):
        check_paper_device(recipe, dataset)
    rerun = False
    results = []
    names = list(recipe.steps)
    for n, name in enumerate(names, 1):
        fn = registry[step_name(name)]
        ctx.state["step_label"] = name.partition(":")[2]
        options = resolve_paths(recipe.steps[name], work_dir)
        if "sources" in inspect.signature(fn).parameters and "sources" not in options:
            options["sources"] = sources
        _check_options(fn, name, options, where)
        digest = _hash({"options": options, "sources": sources, "seed": ctx.seed,
                        "dataset": str(dataset), "run": {k: recipe.run.get(k) for k in _RUN_KEYS}})
        rerun = rerun or name == from_step
        done = log["steps"].get(name)
        if not rerun and done and done.get("options_hash") == digest:
            con.print(f"[dim]step {n}/{len(names)} {name}: done before, skipped[/dim]")
            results.append({"name": name, "status": "skipped", "seconds": 0.0,
                            "summary": done.get("summary", {})})
            continue
        rerun = True  # everything after a step that runs must run again
        con.print(f"[bold]step {n}/{len(names)} {name}[/bold]")
        t0 = time.perf_counter()
        summary = fn(ctx, **options) or {}
        secs = time.perf_counter() - t0
        log["steps"][name] = {"options_hash": digest, "summary": _jsonable(summary),
                              "finished": dt.datetime.now(dt.UTC).isoformat(),
                              "seconds": round(secs, 3)}
        log["state"] = _jsonable({k: v for k, v in ctx.state.items() if k != "sources"})
        atomic_write_json(log_path, log)
        con.print(f"[green]step {name} done[/green] in {secs:.1f} s")
        results.append({"name": name, "status": "ran", "seconds": secs,
                        "summary": _jsonable(summary)})
    return {"work_dir": str(work_dir), "dataset": str(dataset), "steps": results}


def _check_steps(recipe: Recipe, where: str, from_step: str | None) -> dict[str, StepFn]:
    """The step registry, after checking the recipe's step names.

    Every step of ``recipe`` must be registered and ``from_step`` (when given) one of them.

    Raises:
        RecipeError: unknown steps (the message lists the registered ones).
        UsageError: ``from_step`` is not a step of the recipe.
    """
    registry = all_steps()
    unknown = [s for s in recipe.steps if step_name(s) not in registry]
    if unknown:
        raise RecipeError(f"{where}: unknown step(s) {', '.join(unknown)}; registered steps: "
                          f"{', '.join(sorted(registry)) or 'none'}")
    if from_step is not None and from_step not in recipe.steps:
        raise UsageError(f"--from {from_step}: the recipe has no step {from_step!r} "
                         f"(has {', '.join(recipe.steps)})")
    return registry


#: ``[run]`` keys whose change re-runs every step (they change what the steps compute).
_RUN_KEYS = ("preset", "holdout", "test_set")


def step_name(key: str) -> str:
    """The registered step of a recipe step key (``"score:rgb"`` -> ``"score"``)."""
    return key.partition(":")[0]


#: Training throughput assumed for CPU estimates: ResNet18 with the mask branch at 64 px,
#: forward + backward, measured at ~94 patches/s on 2 CPU threads (a rough figure).
CPU_PATCHES_PER_S = 94.0
#: Objects of the paper's build when the dataset does not exist yet: 74,620 MF and 105,538
#: mitotic-like figures (OMG-Net abstract); harvested background nuclei come on top.
PAPER_OBJECTS = 74_620 + 105_538
_HEAVY = ("train-classifier", "detect", "refine-masks", "harvest")


def _is_heavy(name: str, opts: Mapping[str, Any]) -> bool:
    """Training and detection always; refine and harvest only with SAM.

    The classical segmenter is the CPU default and runs at paper scale on a CPU.
    """
    if step_name(name) in ("train-classifier", "detect"):
        return True
    return bool(opts.get("sam_checkpoint") or opts.get("checkpoint"))


def check_paper_device(recipe: Recipe, dataset: Path) -> None:
    """Raise :class:`UsageError` with the plan and a time estimate for a paper run on CPU."""
    import torch

    if torch.cuda.is_available():
        return
    heavy = [k for k in recipe.steps
             if step_name(k) in _HEAVY and _is_heavy(k, recipe.steps[k])]
    if not heavy:
        return
    n_obj, what = PAPER_OBJECTS, "the paper's 180,158 MF + mitotic-like (harvested on top)"
    manifest = dataset / "manifest.json"
    if manifest.exists():
        try:
            n_obj = int(json.loads(manifest.read_text())["counts"]["objects"])
            what = f"the dataset's {n_obj:,} objects"
        except (KeyError, TypeError, ValueError, json.JSONDecodeError):
            pass
    lines = []
    for k in heavy:
        opts = recipe.steps[k]
        if step_name(k) == "train-classifier":
            epochs, seeds = int(opts.get("epochs", 30)), int(opts.get("seeds", 1))
            hours = n_obj * epochs * seeds / CPU_PATCHES_PER_S / 3600
            lines.append(f"  {k}: {seeds} seed(s) x {epochs} epochs over {what}: at least "
                         f"{hours:,.0f} CPU hours at ~{CPU_PATCHES_PER_S:.0f} patches/s")
        elif opts.get("sam_checkpoint") or opts.get("checkpoint"):
            model = opts.get("sam_model", opts.get("model_type", "vit_h"))
            lines.append(f"  {k}: SAM {model} on CPU: its image "
                         "encoder (~3 TFLOP for ViT-H) takes roughly 30 s or more per 1024 px "
                         "tile, for every tile of every image")
        else:
            lines.append(f"  {k}: as configured")
    raise UsageError("this is a paper-scale run and no GPU is visible; it would run:\n"
                     + "\n".join(lines)
                     + "\nrun it on a GPU machine, ask for the short version with --quick "
                       "(--set run.preset=\"quick\"), or --set run.allow_cpu=true to run the "
                       "full version on this CPU anyway")


def _check_options(fn: Any, name: str, options: Mapping[str, Any], where: str) -> None:
    sig = inspect.signature(fn)
    params = list(sig.parameters.values())
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return
    accepted = {p.name for p in params[1:]
                if p.kind in (inspect.Parameter.KEYWORD_ONLY,
                              inspect.Parameter.POSITIONAL_OR_KEYWORD)}
    bad = sorted(set(options) - accepted)
    if bad:
        raise RecipeError(f"{where}: step {name!r} has no option(s) {', '.join(bad)}; it "
                          f"accepts {', '.join(sorted(accepted)) or 'none'}")
    missing = [p.name for p in params[1:] if p.default is inspect.Parameter.empty
               and p.kind is not inspect.Parameter.VAR_POSITIONAL and p.name not in options]
    if missing:
        raise RecipeError(f"{where}: step {name!r} needs option(s) {', '.join(missing)}")


def _load_log(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {"steps": {}, "state": {}}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise RecipeError(f"{path}: unreadable run log ({exc}); delete it to start over"
                          ) from None
    data.setdefault("steps", {})
    data.setdefault("state", {})
    return dict(data)
