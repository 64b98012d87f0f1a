"""Recipe step ``export``: COCO export of the dataset into the run folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mfcurate.dataset import Dataset
from mfcurate.export.coco import export_coco
from mfcurate.pipelines.steps import StepContext, step


@step("export")
def export_step(ctx: StepContext, *, out: str = "export/coco", by_source: bool = False,
                segmentation: str = "rle", **filters: Any) -> dict[str, Any]:
    """Write COCO JSON per split (or per source) under ``work_dir/out``.

    ``filters`` are selection options (``sources``, ``labels``, ``splits``, ``qa_states``,
    ``species``, ``tumour_types``, ...); an unknown key is a usage error.
    """
    out_dir = Path(out) if Path(out).is_absolute() else ctx.work_dir / out
    report = export_coco(Dataset.open(ctx.dataset), out_dir, by_source=by_source,
                         segmentation=segmentation, **filters)
    return {"files": {Path(k).name: {"images": v[0], "annotations": v[1]}
                      for k, v in report.files.items()}}
