"""Ingest one source into a dataset."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mfcurate.adapters import AdapterConfig, get_adapter
from mfcurate.dataset import Dataset


@dataclass
class IngestReport:
    """What an ingest did."""

    source: str
    n_images: int
    n_objects: int
    missing_images: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)


def ingest_source(source: str, root: Path | str, out: Path | str,
                  config: AdapterConfig | None = None) -> IngestReport:
    """Read ``root`` with the adapter ``source`` and commit it into the dataset ``out``.

    The adapter reads and validates everything before the dataset is touched, so bad input
    leaves the dataset exactly as it was.
    """
    adapter = get_adapter(source)(root, config)
    images, objects = adapter.to_tables()
    ds = Dataset.open(out, create=True)
    ds.commit_source(source, images, [objects], info=adapter.source_card(), root=root)
    return IngestReport(source, images.num_rows, objects.num_rows,
                        list(adapter.missing_images), list(adapter.dropped))
