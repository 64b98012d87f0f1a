"""QA summary per source, for ``mfcurate info`` (the lead's command calls :func:`qa_summary`)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pyarrow.compute as pc

from mfcurate.dataset import Dataset, Selection, iter_selected


@dataclass
class QARow:
    """QA figures of one source.

    Attributes:
        source: source key.
        objects: objects of the source.
        with_mask: objects with a mask.
        by_origin: objects per ``mask_origin``.
        by_state: objects per ``qa_state``.
        by_flag: objects per QA flag (an object may have several).
        reprompted: masks kept from an automatic re-prompt (not the first box prompt).
        flagged_pct: share of masked objects left ``flagged``, percent.
    """

    source: str
    objects: int = 0
    with_mask: int = 0
    by_origin: dict[str, int] = field(default_factory=dict)
    by_state: dict[str, int] = field(default_factory=dict)
    by_flag: dict[str, int] = field(default_factory=dict)
    reprompted: int = 0
    flagged_pct: float = 0.0

    def cells(self) -> list[str]:
        """The row as table cells (source, objects, masks, origins, states, flags, ...)."""
        return [self.source, f"{self.objects:,}", f"{self.with_mask:,}",
                ", ".join(f"{k} {v:,}" for k, v in sorted(self.by_origin.items())) or "-",
                ", ".join(f"{k} {v:,}" for k, v in sorted(self.by_state.items())) or "-",
                ", ".join(f"{k} {v:,}" for k, v in sorted(self.by_flag.items())) or "-",
                f"{self.reprompted:,}", f"{self.flagged_pct:.1f}%"]


QA_COLUMNS = ["source", "objects", "with mask", "mask origins", "QA states", "QA flags",
              "re-prompted", "flagged"]


def qa_summary(dataset: Dataset) -> list[QARow]:
    """One :class:`QARow` per source (streams the objects table; memory is one batch)."""
    out: list[QARow] = []
    for source in dataset.sources:
        row = QARow(source=source)
        every = Selection(sources=(source,), include_rejected=True, include_duplicates=True)
        for t in iter_selected(dataset, every, columns=["mask_rle", "mask_origin",
                                                        "qa_state", "qa_flags", "extra"]):
            row.objects += t.num_rows
            row.with_mask += int(pc.sum(pc.is_valid(t.column("mask_rle"))).as_py() or 0)
            for v in pc.value_counts(pc.drop_null(t.column("mask_origin"))).to_pylist():
                row.by_origin[v["values"]] = row.by_origin.get(v["values"], 0) + v["counts"]
            for v in pc.value_counts(t.column("qa_state")).to_pylist():
                row.by_state[v["values"]] = row.by_state.get(v["values"], 0) + v["counts"]
            flags = pc.list_flatten(t.column("qa_flags"))
            for v in pc.value_counts(flags).to_pylist():
                row.by_flag[v["values"]] = row.by_flag.get(v["values"], 0) + v["counts"]
            for e in t.column("extra").to_pylist():
                if e and '"refine"' in e:
                    try:
                        strategy = json.loads(e).get("refine", {}).get("strategy", "box")
                    except (json.JSONDecodeError, AttributeError):
                        continue
                    row.reprompted += int(strategy not in ("box",))
        if row.with_mask:
            row.flagged_pct = 100.0 * row.by_state.get("flagged", 0) / row.with_mask
        out.append(row)
    return out
