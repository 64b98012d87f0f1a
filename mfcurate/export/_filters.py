"""Object selection shared by the exports (GeoJSON, Parquet, crops).

Every export takes the same keyword filters, so ``mfcurate export DS --format X --label
mitotic_figure --source midog++`` means the same thing for every format.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from mfcurate.dataset import Dataset
from mfcurate.errors import UsageError
from mfcurate.schemas.vocab import Label, QAState, Split


@dataclass(frozen=True)
class ObjectFilter:
    """Which objects an export writes.

    Attributes:
        sources: source keys to keep (None: all).
        labels: labels to keep (None: all).
        splits: image splits to keep (None: all).
        qa_states: QA states to keep (None: all but ``rejected``, see ``include_rejected``).
        include_rejected: without ``qa_states``, keep ``rejected`` objects too.
        masked_only: keep only objects that have a mask.
    """

    sources: tuple[str, ...] | None = None
    labels: tuple[str, ...] | None = None
    splits: tuple[str, ...] | None = None
    qa_states: tuple[str, ...] | None = None
    include_rejected: bool = False
    masked_only: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_options(cls, ds: Dataset, **options: Any) -> ObjectFilter:
        """Build and check a filter from keyword options (unknown keys are a usage error)."""
        known = {"sources", "labels", "splits", "qa_states", "include_rejected", "masked_only"}
        unknown = sorted(set(options) - known)
        if unknown:
            raise UsageError(f"unknown export filter(s): {', '.join(unknown)}; "
                             f"known: {', '.join(sorted(known))}")
        sources = _tuple(options.get("sources"))
        labels = _tuple(options.get("labels"))
        splits = _tuple(options.get("splits"))
        qa_states = _tuple(options.get("qa_states"))
        if qa_states is not None:
            bad = [q for q in qa_states if q not in {v.value for v in QAState}]
            if bad:
                raise UsageError(f"unknown QA state(s) {', '.join(bad)}; choose from "
                                 f"{', '.join(v.value for v in QAState)}")
        if sources is not None:
            missing = [s for s in sources if s not in ds.sources]
            if missing:
                raise UsageError(f"source(s) {', '.join(missing)} not in {ds.root} "
                                 f"(has {', '.join(ds.sources) or 'none'})")
        if labels is not None:
            bad = [lab for lab in labels if lab not in {v.value for v in Label}]
            if bad:
                raise UsageError(f"unknown label(s) {', '.join(bad)}; choose from "
                                 f"{', '.join(v.value for v in Label)}")
        if splits is not None:
            bad = [s for s in splits if s not in {v.value for v in Split}]
            if bad:
                raise UsageError(f"unknown split(s) {', '.join(bad)}; choose from "
                                 f"{', '.join(v.value for v in Split)}")
        return cls(sources=sources, labels=labels, splits=splits, qa_states=qa_states,
                   include_rejected=bool(options.get("include_rejected", False)),
                   masked_only=bool(options.get("masked_only", False)))

    def describe(self) -> dict[str, Any]:
        """JSON-able description (written next to the export)."""
        return {"sources": list(self.sources) if self.sources else None,
                "labels": list(self.labels) if self.labels else None,
                "splits": list(self.splits) if self.splits else None,
                "qa_states": list(self.qa_states) if self.qa_states else None,
                "include_rejected": self.include_rejected, "masked_only": self.masked_only}


def _tuple(v: Any) -> tuple[str, ...] | None:
    if v is None:
        return None
    if isinstance(v, str):
        return (v,)
    t = tuple(str(x) for x in v)
    return t or None


def selected_images(ds: Dataset, flt: ObjectFilter) -> pa.Table:
    """The images the filter keeps (by source and split)."""
    images = ds.images(sources=list(flt.sources) if flt.sources else None)
    if flt.splits:
        images = images.filter(pc.is_in(images.column("split"),
                                        value_set=pa.array(list(flt.splits))))
    return images


def iter_selected_objects(ds: Dataset, flt: ObjectFilter, images: pa.Table | None = None,
                          columns: Sequence[str] | None = None,
                          batch_size: int = 65536) -> Iterator[pa.Table]:
    """Stream the objects the filter keeps, in batches (only on ``images`` if given)."""
    if images is None:
        images = selected_images(ds, flt)
    keys = images.column("image_key").combine_chunks()
    for t in ds.iter_objects(sources=list(flt.sources) if flt.sources else None,
                             batch_size=batch_size):
        mask = pc.is_in(t.column("image_key"), value_set=keys)
        if flt.labels:
            mask = pc.and_(mask, pc.is_in(t.column("label"),
                                          value_set=pa.array(list(flt.labels))))
        if flt.qa_states:
            mask = pc.and_(mask, pc.is_in(t.column("qa_state"),
                                          value_set=pa.array(list(flt.qa_states))))
        elif not flt.include_rejected:
            mask = pc.and_(mask, pc.not_equal(t.column("qa_state"), QAState.REJECTED.value))
        if flt.masked_only:
            mask = pc.and_(mask, pc.is_valid(t.column("mask_rle")))
        t = t.filter(mask)
        if t.num_rows:
            yield t.select(list(columns)) if columns else t
