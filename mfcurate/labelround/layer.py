"""The round's rows of the dataset's ``labels`` layer (one per source, shared by all rounds).

A row's ``votes`` list replaces the object's: it is rebuilt as the votes the object has
without the ``labels`` part (a source's own experts), then the votes of *other* rounds that
the layer already holds, then this round's ledger.  ``import`` writes the votes and keeps
the row's label; ``resolve`` also writes ``label``, ``label_origin = consensus`` and a
``step_info`` JSON with the round, the rule and how the object was decided (shown in the
effective row's ``extra.labels``); ``step_info.rounds`` keeps every round's decision
(``round id -> {label, rule, decided_by, ...}``), so the agreement of an earlier round can
still be told.  Rows of objects outside the round are kept as they are.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from mfcurate.dataset import Dataset
from mfcurate.labelround.round import Round
from mfcurate.schemas.tables import LAYER_SCHEMA
from mfcurate.schemas.vocab import LabelOrigin

PART = "labels"


def prior_rows(ds: Dataset, keys: list[str]) -> dict[str, dict[str, Any]]:
    """``object key -> {label, votes, source, image_key}`` without the ``labels`` part."""
    want = pa.array(sorted(set(keys)), pa.string())
    out: dict[str, dict[str, Any]] = {}
    for t in ds.iter_objects(columns=["object_key", "image_key", "source", "label", "votes"],
                             exclude_parts=[PART]):
        t = t.filter(pc.is_in(t.column("object_key"), value_set=want))
        for r in t.to_pylist():
            out[r["object_key"]] = r
    return out


def layer_tables(ds: Dataset, rnd: Round, votes: Mapping[str, list[dict[str, Any]]],
                 decisions: Mapping[str, tuple[str, dict[str, Any]]] | None = None
                 ) -> dict[str, pa.Table]:
    """New ``labels`` layer per source touched by the round.

    Args:
        ds: the dataset (the round's objects must exist in it).
        rnd: the round.
        votes: ``object key -> this round's votes`` (``VOTE_TYPE`` dicts).
        decisions: ``object key -> (label, step_info)`` from ``resolve`` (None: keep labels).
    """
    keys = [o.object_key for o in rnd.objects]
    prior = prior_rows(ds, keys)
    by_source: dict[str, list[str]] = {}
    for o in rnd.objects:
        if o.object_key in prior:
            by_source.setdefault(o.source, []).append(o.object_key)
    tables: dict[str, pa.Table] = {}
    for source, src_keys in sorted(by_source.items()):
        old = ds.layer(source, PART)
        old_rows = {r["object_key"]: r for r in old.to_pylist()}
        mine = set(src_keys)
        rows = [r for k, r in old_rows.items() if k not in mine]
        for key in sorted(mine):
            row = _row(key, old_rows.get(key), prior[key], rnd.round_id, votes.get(key, []),
                       None if decisions is None else decisions.get(key))
            if row is not None:
                rows.append(row)
        rows.sort(key=lambda r: r["object_key"])
        tables[source] = pa.Table.from_pylist(rows, schema=LAYER_SCHEMA)
    return tables


def _row(key: str, old: dict[str, Any] | None, prior: dict[str, Any], round_id: str,
         votes: list[dict[str, Any]], decision: tuple[str, dict[str, Any]] | None
         ) -> dict[str, Any] | None:
    base = [v for v in prior.get("votes") or [] if not v.get("round")]
    others = [v for v in (old or {}).get("votes") or []
              if v.get("round") and v.get("round") != round_id]
    all_votes = [*base, *others, *votes]
    row: dict[str, Any] = {f.name: None for f in LAYER_SCHEMA}
    row["object_key"] = key
    if old is not None:
        for c in ("label", "label_origin", "step_info"):
            row[c] = old.get(c)
    if decision is not None:
        label, info = decision
        row["label"] = label
        row["label_origin"] = LabelOrigin.CONSENSUS.value
        rounds = dict(_loads(row["step_info"]).get("rounds") or {})
        rounds[round_id] = {"label": label, **{k: v for k, v in info.items() if k != "round"}}
        row["step_info"] = json.dumps({**info, "round": round_id, "rounds": rounds},
                                      sort_keys=True)
    row["votes"] = all_votes or None
    if row["votes"] is None and row["label"] is None:
        return None
    return row


def _loads(s: str | None) -> dict[str, Any]:
    try:
        v = json.loads(s) if s else {}
    except json.JSONDecodeError:
        return {}
    return v if isinstance(v, dict) else {}
