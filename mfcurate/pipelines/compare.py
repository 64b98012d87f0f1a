"""Recipe step ``compare``: two arms of an ablation, Mann-Whitney U over their seeds.

Each arm is the label of a ``score`` step (``[steps."score:rgb"]``); that step filed one
score file per ensemble member under its label (``ctx.state["score_files"]``).  The test is
two-sided and exact for small samples: with 5 seeds against 5 the smallest possible p is
2/252 ≈ 0.0079, so p < 0.001 cannot be reached with five seeds per arm.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mfcurate.errors import UsageError
from mfcurate.pipelines.steps import StepContext, step


@step("compare")
def compare_step(ctx: StepContext, *, a: str, b: str, metric: str = "f1",
                 out: str = "compare.json") -> dict[str, Any]:
    """Compare the per-seed scores of arm ``a`` with arm ``b`` (labels of score steps)."""
    from mfcurate.dataset import atomic_write_json
    from mfcurate.scoring.compare import compare_score_files

    files = ctx.state.get("score_files", {})
    missing = [x for x in (a, b) if not files.get(x)]
    if missing:
        raise UsageError(f"compare: no per-seed score files for {', '.join(missing)} "
                         f"(score steps ran for {', '.join(sorted(files)) or 'none'})")
    res = compare_score_files([Path(p) for p in files[a]], [Path(p) for p in files[b]],
                              metric)
    path = Path(out) if Path(out).is_absolute() else ctx.work_dir / out
    atomic_write_json(path, {"a": a, "b": b, **res})
    o = res["overall"]
    ctx.console.print(f"{metric} {a} (median {o['median_a']:.3f}, n={o['n_a']}) vs {b} "
                      f"(median {o['median_b']:.3f}, n={o['n_b']}): Mann-Whitney U "
                      f"{o['u']:.1f}, p = {o['p']:.4f}", markup=False)
    return {"a": a, "b": b, "metric": metric, "overall": o, "out": str(path),
            "per_tumour_p": {k: v["p"] for k, v in res["per_tumour"].items()}}
