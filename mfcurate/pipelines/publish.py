"""Recipe step ``publish``: build the publish package; deposit it only when asked.

Without ``zenodo``, ``sandbox`` or ``url`` the step is a dry run (the package only), so a
recipe never reaches the network by accident.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mfcurate.pipelines.steps import StepContext, step


@step("publish")
def publish_step(ctx: StepContext, *, out: str = "publish", version: str = "1.0.0",
                 license: str | None = None,
                 metadata_file: str | None = None, include_crops: bool = False,
                 include_images: bool = False, crop_size: int = 128,
                 zenodo: bool = False, sandbox: bool = False, url: str | None = None,
                 token_file: str | None = None, publish: bool = True,
                 new_version_of: str | None = None, only_sources: list[str] | None = None,
                 **_: Any) -> dict[str, Any]:
    """Build ``out`` (relative to the run folder) and deposit it if a target is given."""
    from mfcurate.publish.service import publish_dataset

    path = Path(out) if Path(out).is_absolute() else ctx.work_dir / out
    dry = not (zenodo or sandbox or url)
    return publish_dataset(ctx.dataset, path, dry_run=dry, zenodo=zenodo, sandbox=sandbox,
                           url=url, token_file=token_file, metadata_file=metadata_file,
                           license=license, version=version, publish=publish,
                           new_version_of=new_version_of, include_crops=include_crops,
                           include_images=include_images, crop_size=crop_size,
                           sources=only_sources,
                           log=lambda m: ctx.console.print(f"  {m}", highlight=False))
