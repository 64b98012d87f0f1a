"""Recipe step ``report``: the HTML dataset report into the run folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mfcurate.pipelines.steps import StepContext, step


@step("report")
def report_step(ctx: StepContext, *, out: str = "report.html", examples_per_label: int = 4,
                crop_px: int = 96, **_: Any) -> dict[str, Any]:
    """Write the report to ``out`` (relative to the run folder)."""
    from mfcurate.report.html import build_report

    path = Path(out) if Path(out).is_absolute() else ctx.work_dir / out
    return build_report(ctx.dataset, path, examples_per_label=examples_per_label,
                        crop_px=crop_px, seed=ctx.seed)
