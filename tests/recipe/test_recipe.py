from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mfcurate.errors import UsageError
from mfcurate.pipelines.steps import STEPS, StepContext, all_steps
from mfcurate.recipe import (
    CANONICAL_ORDER,
    Recipe,
    RecipeError,
    apply_overrides,
    parse_set_option,
    run_recipe,
)

REPO = Path(__file__).resolve().parents[2]
CALLS: list[tuple[str, dict[str, Any]]] = []


def _alpha(ctx: StepContext, *, sources: list[dict[str, Any]], out: str = "a.txt",
           n: int = 1) -> dict[str, Any]:
    CALLS.append(("t-alpha", {"sources": sources, "out": out, "n": n}))
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(str(n))
    ctx.state["alpha_out"] = out
    return {"n": n}


def _beta(ctx: StepContext, *, factor: int = 2) -> dict[str, Any]:
    CALLS.append(("t-beta", {"factor": factor, "alpha_out": ctx.state.get("alpha_out"),
                             "seed": ctx.seed, "workers": ctx.workers}))
    value = int(Path(ctx.state["alpha_out"]).read_text()) * factor
    return {"value": value}


def _gamma(ctx: StepContext, **options: Any) -> dict[str, Any]:
    CALLS.append(("t-gamma", dict(options)))
    return {"dataset": str(ctx.dataset)}


@pytest.fixture(autouse=True)
def test_steps() -> Iterator[None]:
    all_steps()
    added = {"t-alpha": _alpha, "t-beta": _beta, "t-gamma": _gamma}
    STEPS.update(added)
    CALLS.clear()
    yield
    for k in added:
        STEPS.pop(k, None)


def _write(tmp: Path, body: str) -> Path:
    p = tmp / "recipe.toml"
    p.write_text(body)
    return p


RECIPE = """
[run]
work_dir = "work"
seed = 3
workers = 2

[[sources]]
key = "midog++"
root = "sources/midogpp"
options = { annotations = "json" }

[steps.t-alpha]
out = "outputs/alpha.txt"
n = 5

[steps.t-beta]
factor = 3

[steps.t-gamma]
"""


def test_runs_in_order_and_resolves_paths(tmp_path: Path) -> None:
    res = run_recipe(_write(tmp_path, RECIPE))
    work = tmp_path / "work"
    assert res["work_dir"] == str(work) and res["dataset"] == str(work / "dataset")
    assert [c[0] for c in CALLS] == ["t-alpha", "t-beta", "t-gamma"]
    alpha = CALLS[0][1]
    assert alpha["out"] == str(work / "outputs" / "alpha.txt")
    assert alpha["sources"] == [{"key": "midog++", "root": str(work / "sources" / "midogpp"),
                                 "options": {"annotations": "json"}}]
    assert CALLS[1][1] == {"factor": 3, "alpha_out": alpha["out"], "seed": 3, "workers": 2}
    assert [s["summary"] for s in res["steps"]] == [{"n": 5}, {"value": 15},
                                                    {"dataset": str(work / "dataset")}]
    log = json.loads((work / "run-log.json").read_text())
    assert set(log["steps"]) == {"t-alpha", "t-beta", "t-gamma"}


def test_skip_done_and_from_step(tmp_path: Path) -> None:
    path = _write(tmp_path, RECIPE)
    run_recipe(path)
    CALLS.clear()
    res = run_recipe(path)
    assert CALLS == [] and [s["status"] for s in res["steps"]] == ["skipped"] * 3
    # state handed over by a skipped step still reaches later steps
    res = run_recipe(path, from_step="t-beta")
    assert [c[0] for c in CALLS] == ["t-beta", "t-gamma"]
    assert CALLS[0][1]["alpha_out"] == str(tmp_path / "work" / "outputs" / "alpha.txt")
    assert [s["status"] for s in res["steps"]] == ["skipped", "ran", "ran"]
    # changing an option re-runs that step and every step after it
    CALLS.clear()
    res = run_recipe(path, overrides={"steps.t-alpha.n": 7})
    assert [c[0] for c in CALLS] == ["t-alpha", "t-beta", "t-gamma"]
    assert res["steps"][1]["summary"] == {"value": 21}
    CALLS.clear()
    run_recipe(path, overrides={"steps.t-beta.factor": 4, "steps.t-alpha.n": 7})
    assert [c[0] for c in CALLS] == ["t-beta", "t-gamma"]


def test_overrides(tmp_path: Path) -> None:
    path = _write(tmp_path, RECIPE)
    other = tmp_path / "elsewhere"
    run_recipe(path, overrides={"work_dir": str(other), "seed": 11,
                                "sources.midog++.root": "/data/midog", "run.workers": 1})
    assert CALLS[0][1]["sources"][0]["root"] == "/data/midog"
    assert CALLS[1][1]["seed"] == 11 and CALLS[1][1]["workers"] == 1
    assert (other / "run-log.json").exists() and not (tmp_path / "work").exists()
    r = Recipe.load(path)
    with pytest.raises(UsageError, match="no step 'nope'"):
        apply_overrides(r, {"steps.nope.x": 1})
    with pytest.raises(UsageError, match="no source"):
        apply_overrides(r, {"sources.cmc.root": "/x"})
    assert parse_set_option("steps.t-beta.factor=4") == ("steps.t-beta.factor", 4)
    assert parse_set_option("work_dir=/a b") == ("work_dir", "/a b")
    assert parse_set_option('x=["a", "b"]') == ("x", ["a", "b"])


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match=r"unknown step\(s\) train.*registered steps:.*t-alpha"):
        run_recipe(_write(tmp_path, "[steps.train]\n"))
    with pytest.raises(RecipeError, match=r"step 't-beta' has no option.*colour.*factor"):
        run_recipe(_write(tmp_path, "[steps.t-beta]\ncolour = 1\n"))
    with pytest.raises(RecipeError, match="invalid TOML"):
        run_recipe(_write(tmp_path, "[steps\n"))
    with pytest.raises(RecipeError, match="does not exist"):
        run_recipe(tmp_path / "missing.toml")
    with pytest.raises(RecipeError, match=r"sources\[0\] needs"):
        run_recipe(_write(tmp_path, "[[sources]]\nkey = 'x'\n"))
    with pytest.raises(UsageError, match="--from t-gamma"):
        run_recipe(_write(tmp_path, "[steps.t-beta]\n"), from_step="t-gamma")
    assert CALLS == []


def test_failed_step_is_not_recorded(tmp_path: Path) -> None:
    path = _write(tmp_path, "[run]\nwork_dir = 'w'\n[steps.t-beta]\n")
    with pytest.raises(KeyError):
        run_recipe(path)  # no alpha_out in the state
    assert not (tmp_path / "w" / "run-log.json").exists()


@pytest.mark.parametrize("name", ["demo.toml", "omgnet-pancancer.toml"])
def test_shipped_recipes_parse(name: str) -> None:
    path = REPO / "pipelines" / name
    recipe = Recipe.load(path)
    assert list(recipe.steps) == [s for s in CANONICAL_ORDER if s in recipe.steps]
    assert recipe.steps and "ingest" in recipe.steps
    data = tomllib.loads(path.read_text())
    assert data["run"]["work_dir"]
    keys = [s["key"] for s in recipe.sources]
    if name == "omgnet-pancancer.toml":
        assert keys == ["icpr2012", "tupac16", "ccmct", "cmc", "midog++", "folder"]
        from mfcurate.adapters import all_adapters

        adapters = all_adapters()
        for s in recipe.sources:
            assert s["key"] in adapters
            db = s["options"].get("database")
            if db:  # a label variant the adapter knows
                assert db.lower() in {k.lower() for k in adapters[s["key"]].databases}
    else:
        from mfcurate.synth.sources import generators

        assert keys[:2] == ["midog++", "folder"]
        assert set(keys) <= set(generators())  # the demo can generate every source it names
    # every option of a step registered on this branch is one the step accepts
    registry = all_steps()
    for step_name, options in recipe.steps.items():
        if step_name in registry and step_name in ("report", "publish"):
            import inspect

            params = inspect.signature(registry[step_name]).parameters
            assert set(options) <= set(params), (step_name, options)


def test_report_and_publish_steps(dataset: Path, tmp_path: Path) -> None:
    body = f"""
[run]
work_dir = "{tmp_path / 'run'}"
dataset = "{dataset}"

[steps.report]
out = "reports/ds.html"
examples_per_label = 1

[steps.publish]
out = "release"
only_sources = ["midog++"]
"""
    res = run_recipe(_write(tmp_path, body))
    assert (tmp_path / "run" / "reports" / "ds.html").exists()
    pub = res["steps"][1]["summary"]
    assert pub["license"] == "CC0-1.0" and pub["deposit"] is None
    assert (tmp_path / "run" / "release" / "croissant.json").exists()
    res = run_recipe(_write(tmp_path, body))
    assert [s["status"] for s in res["steps"]] == ["skipped", "skipped"]


def test_run_cli(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    bad = _write(tmp_path, "[steps.no-such-step]\n")
    p = subprocess.run([sys.executable, "-m", "mfcurate", "run", str(bad)],
                       capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode == 1
    assert "unknown step(s) no-such-step; registered steps:" in p.stderr and "report" in p.stderr
    p = subprocess.run([sys.executable, "-m", "mfcurate", "run", "--list-steps"],
                       capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode == 0 and "publish" in p.stdout and "report" in p.stdout


def test_demo_command_end_to_end(tmp_path: Path) -> None:
    """`mfcurate demo`: synthetic sources, then demo.toml with every registered step."""
    from typer.testing import CliRunner

    from mfcurate.cli import app

    res = CliRunner().invoke(app, ["demo", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    log = json.loads((tmp_path / "run-log.json").read_text())
    registry = all_steps()
    recipe = Recipe.load(REPO / "pipelines" / "demo.toml")
    assert set(log["steps"]) == {s for s in recipe.steps if s in registry}
    assert {"ingest", "export", "report", "publish"} <= set(log["steps"])
    assert log["steps"]["report"]["summary"]["objects"] > 0
    assert (tmp_path / "report.html").exists()
    assert (tmp_path / "publish" / "croissant.json").exists()
    assert "demo finished" in res.output
    # label hygiene (issue 12): multi-part figures keep their masses, no negative patch is
    # centred in a mitotic figure's box, disk stand-ins <= 0.5 % of every class
    from mfcurate.classifier.hygiene import hygiene_figures

    figs = hygiene_figures(tmp_path / "dataset", tmp_path / "patches")
    assert figs["mf_multi_part"] >= 2, figs
    assert figs["negatives_in_mf_box"] == {"dataset": 0, "patches": 0}, figs
    assert all(v <= 0.005 for v in figs["disk_share_by_label"].values()), figs
