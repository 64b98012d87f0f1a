"""What a harvest did: the report ``harvest_dataset`` returns and the CLI prints."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class HarvestReport:
    """What a harvest did."""

    backend: str
    work_dir: str
    images: int = 0
    images_skipped: list[str] = field(default_factory=list)
    tiles_total: int = 0
    tiles_on_tissue: int = 0
    candidates: int = 0
    seam_duplicates: int = 0
    background: int = 0
    matched: int = 0
    parts: int = 0
    near: int = 0
    near_dropped: int = 0
    #: candidates dropped because their centre lies outside the allowed region (``within``)
    outside_region: int = 0
    #: images harvested inside their tumour regions (``within="tumour-region"``)
    within_regions: int = 0
    #: images without tumour regions, harvested as ``regions`` says (``within`` set)
    within_fallback: list[str] = field(default_factory=list)
    annotation_masks_filled: int = 0
    by_source: dict[str, dict[str, int]] = field(default_factory=dict)
    overlay: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly dict."""
        return asdict(self)

    def within_line(self) -> str | None:
        """One line on ``within="tumour-region"`` (None when it was not asked for)."""
        if not self.within_regions and not self.within_fallback:
            return None
        line = (f"harvested {self.within_regions} images inside their tumour regions "
                f"({self.outside_region} objects outside them dropped)")
        if self.within_fallback:
            line += (f"; {len(self.within_fallback)} images have no tumour region and were "
                     f"harvested on all their tissue (e.g. {self.within_fallback[0]})")
        return line
