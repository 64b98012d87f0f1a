"""What a fake-source generator returns: the truth it planted, for the contract test."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class FakeSpec:
    """Truth of one generated fake source.

    Attributes:
        source: adapter key.
        root: the folder to pass to ``mfcurate ingest <source> ROOT``.
        n_images: images the adapter must report.
        counts: objects per label value the adapter must report.
        annotation_files: annotation files whose truncation must raise a
            :class:`~mfcurate.errors.SourceFormatError` naming the file.
        empty_image_ids: source image ids that have no annotation (zero rows, right schema).
        options: adapter options (``AdapterConfig.options``) the ingest must use.
        regions: region polygons per ``region_class`` the adapter must keep (after repair;
            the dropped ones are not counted).
    """

    source: str
    root: Path
    n_images: int
    counts: dict[str, int]
    annotation_files: list[Path] = field(default_factory=list)
    empty_image_ids: list[str] = field(default_factory=list)
    options: dict[str, str] = field(default_factory=dict)
    regions: dict[str, int] = field(default_factory=dict)
