"""The three steps of a label round: ``new``, ``import`` and ``resolve`` (see the package doc)."""

from __future__ import annotations

import datetime as dt
import json
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mfcurate.dataset import Dataset, Selection, atomic_write_bytes, atomic_write_json
from mfcurate.errors import DatasetError, UsageError
from mfcurate.labelround.round import ROUND_FILE, Round, load_round
from mfcurate.labelround.select import (
    Selected,
    read_candidates,
    select_detections,
    select_existing,
)

_RATER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def parse_raters(text: str | Sequence[str]) -> list[str]:
    """``"r1,r2,r3"`` (or a list) as unique rater names.

    Raises:
        UsageError: fewer than one rater, a duplicate, or a name with other characters
            than letters, digits, ``.``, ``_`` and ``-``.
    """
    items = text.split(",") if isinstance(text, str) else list(text)
    raters = [r.strip() for r in items if r.strip()]
    if not raters:
        raise UsageError("give the raters: --raters r1,r2,r3")
    bad = [r for r in raters if not _RATER.match(r)]
    if bad:
        raise UsageError(f"rater name {bad[0]!r}: use letters, digits, '.', '_' or '-'")
    if len(set(raters)) != len(raters):
        raise UsageError("a rater is named twice in --raters")
    return raters


def rater_order(keys: Sequence[str], rater: str, seed: int) -> list[str]:
    """The rater's shuffled order of ``keys`` (reproducible from seed and rater name)."""
    rng = np.random.default_rng([seed, zlib.crc32(rater.encode())])
    return [keys[i] for i in rng.permutation(len(keys))]


@dataclass
class NewRound:
    """What ``new`` wrote.

    Attributes:
        new_detections: the round's new detections (objects of the ``detect`` part).
        reused: how many of them a killed run of the round had committed already.
        finished_before: the folder held this round, complete: nothing was written.
    """

    round: Round
    folder: Path
    new_detections: int
    counts: dict[str, int] = field(default_factory=dict)
    packages: dict[str, Path] = field(default_factory=dict)
    reused: int = 0
    finished_before: bool = False


def new_round(dataset: Path | str, out: Path | str, raters: Sequence[str], *,
              candidates: Path | str | None = None, min_score: float = 0.5,
              match_um: float = 4.0, include: Sequence[str] = (), sample: int = 0,
              seed: int = 0, selection: Selection | None = None,
              round_id: str | None = None) -> NewRound:
    """Choose the objects, add new detections to the ``detect`` part, write the packages.

    Resumable (:mod:`.resume`): rerun with the same options, a killed run completes and
    equals an uninterrupted one; a finished one is left as it is (``finished_before``).

    Raises:
        UsageError: ``out`` already holds another round, the round id is used, or nothing
            was asked for.
        DatasetError: nothing to review.
    """
    from mfcurate.labelround.package import write_packages
    from mfcurate.labelround.resume import (
        clear_pending,
        commit_detections,
        own_detections,
        read_pending,
        remove_leftovers,
        write_pending,
    )

    folder = Path(out)
    if candidates is None and not include and sample <= 0:
        raise UsageError("say what to review: --candidates CSV, --include uncertain,flagged "
                         "and/or --sample N")
    ds = Dataset.open(dataset)
    sel = (selection or Selection()).check(ds)
    rid = round_id or folder.resolve().name
    asked = {"candidates": None if candidates is None else str(Path(candidates).resolve()),
             "min_score": min_score, "match_um": match_um, "include": list(include),
             "sample": sample, "filter": sel.describe()}
    remove_leftovers(folder)
    if (folder / ROUND_FILE).exists():
        return _finished(ds, folder, rid, list(raters), seed, asked)
    pending = read_pending(folder)
    resuming = pending is not None and pending["round_id"] == rid
    own = own_detections(ds, rid)
    if rid in used_round_ids(ds) or (own and not resuming):
        raise UsageError(f"round id {rid!r} is already used in {ds.root}; give --id NAME")
    skip = {k for keys in own.values() for k in keys}
    picked = Selected()
    if candidates is not None:
        select_detections(ds, sel, read_candidates(candidates), picked, min_score=min_score,
                          match_um=match_um, csv_name=Path(candidates).name, round_id=rid,
                          skip=skip)
    select_existing(ds, sel, include, picked, sample=sample, seed=seed, skip=skip)
    if not picked.objects:
        raise DatasetError(f"{ds.root}: no objects to review ({_counts_text(picked.counts)})")
    created = str(pending["created"]) if resuming and pending else _now()
    write_pending(folder, rid, created)
    reused = commit_detections(ds, picked.new_records, own)
    keys = [o.object_key for o in picked.objects]
    rnd = Round(round_id=rid, dataset=str(ds.root.resolve()), raters=list(raters),
                objects=picked.objects, order={r: rater_order(keys, r, seed) for r in raters},
                seed=seed, created=created, selection={**asked, "counts": picked.counts})
    packages = write_packages(ds, rnd, folder)
    rnd.save(folder)
    clear_pending(folder)
    n_new = sum(len(v) for v in picked.new_records.values())
    return NewRound(rnd, folder, n_new, dict(picked.counts), packages, reused)


def _finished(ds: Dataset, folder: Path, rid: str, raters: list[str], seed: int,
              asked: dict[str, Any]) -> NewRound:
    """The round ``folder`` holds, when it is the one asked for (a rerun: a no-op).

    Raises:
        UsageError: it holds another round (other id, dataset, raters, seed or options).
    """
    from mfcurate.labelround.package import package_folder
    from mfcurate.labelround.resume import clear_pending

    rnd = load_round(folder)
    stored = {k: v for k, v in rnd.selection.items() if k != "counts"}
    if (rnd.round_id, rnd.dataset, rnd.raters, rnd.seed, stored) != (
            rid, str(ds.root.resolve()), raters, seed, json.loads(json.dumps(asked))):
        raise UsageError(f"{folder} already holds a round ({rnd.round_id}, other options); "
                         "choose a new --out folder")
    clear_pending(folder)  # killed after round.json, before removing the marker
    counts = {str(k): int(v) for k, v in (rnd.selection.get("counts") or {}).items()}
    return NewRound(rnd, folder, sum(o.new for o in rnd.objects), counts,
                    {r: package_folder(folder, r) for r in rnd.raters}, finished_before=True)


def used_round_ids(ds: Dataset) -> set[str]:
    """Round ids that votes in the dataset's ``labels`` layers carry."""
    out: set[str] = set()
    for src in ds.sources:
        if "labels" in ds.parts(src):
            for votes in ds.layer(src, "labels").column("votes").to_pylist():
                out.update(str(v["round"]) for v in votes or [] if v.get("round"))
    return out


def _counts_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "nothing matched"


@dataclass
class ImportResult:
    """What ``import`` changed."""

    files: int
    unchanged_files: int
    added: int
    changed: int
    removed: int
    abstained: int
    ignored: int
    votes: int
    by_rater: dict[str, int]


def import_votes(folder: Path | str, files: Sequence[Path | str], *,
                 rater: str | None = None, replace: bool = False,
                 dataset: Path | str | None = None) -> ImportResult:
    """Read rater files, validate all of them, update the ledger and the dataset's votes.

    Nothing is stored when any file is bad.  Re-importing unchanged files changes nothing
    (neither the ledger nor the dataset); a rerun of a killed import completes it.
    """
    from mfcurate.labelround.layer import PART, layer_tables
    from mfcurate.labelround.votes import (
        merge_votes,
        read_ledger,
        read_rater_file,
        vote_records,
        write_ledger,
    )

    if not files:
        raise UsageError("give at least one rater file")
    rnd = load_round(folder)
    parsed = [read_rater_file(rnd, f, rater) for f in expand_files(files)]
    old = read_ledger(folder)
    ledger, s = merge_votes(rnd, old, parsed, _now(), replace_other=replace)
    ds = Dataset.open(dataset or rnd.dataset)
    tables = layer_tables(ds, rnd, vote_records(rnd, ledger))
    # the ledger first: the layer is rebuilt from it, so an import killed between the two
    # writes is completed by its rerun with the same votes and times
    if sorted(ledger, key=_vote_key) != sorted(old, key=_vote_key):
        write_ledger(folder, ledger)
    ds.write_layers(tables, part=PART)
    by_rater: dict[str, int] = {}
    for v in ledger:
        by_rater[v.rater] = by_rater.get(v.rater, 0) + 1
    return ImportResult(s.files, s.unchanged_files, s.added, s.changed, s.removed,
                        s.abstained, s.ignored, len(ledger), dict(sorted(by_rater.items())))


def expand_files(files: Sequence[Path | str]) -> list[Path]:
    """Files as given, a folder standing for its ``*.geojson``, ``*.json`` and ``*.csv``.

    Raises:
        SourceFormatError: a folder without such files.
    """
    from mfcurate.errors import SourceFormatError

    out: list[Path] = []
    for f in map(Path, files):
        if f.is_dir():
            found = sorted(p for p in f.iterdir()
                           if p.is_file() and p.suffix.lower() in (".geojson", ".json", ".csv"))
            if not found:
                raise SourceFormatError(f, "no .geojson, .json or .csv files in this folder")
            out.extend(found)
        else:
            out.append(f)
    return out


def _vote_key(v: Any) -> tuple[str, ...]:
    return (v.rater, v.object_key, v.label, v.time, v.file, v.sha256)


@dataclass
class Resolution:
    """What ``resolve`` decided and measured."""

    objects: int
    voted: int
    by_label: dict[str, int]
    by_decided: dict[str, int]
    equivocal: float | None
    unresolved: float | None
    agreement: dict[str, Any]
    files: dict[str, Path]


def resolve_round(folder: Path | str, rule: str = "majority", senior: str | None = None,
                  dataset: Path | str | None = None) -> Resolution:
    """Consensus per object, written into the dataset's ``labels`` layer in one commit.

    Also writes ``resolution.csv`` (one row per object), ``agreement.json`` (overall and
    per tumour type) and ``agreement.png`` into the round folder.
    """
    from mfcurate.labelround.consensus import check_rule, decide, written_label
    from mfcurate.labelround.layer import PART, layer_tables, prior_rows
    from mfcurate.labelround.votes import read_ledger, vote_records, votes_by_object

    rnd = load_round(folder)
    check_rule(rule, senior, rnd.raters)
    ledger = read_ledger(folder)
    if not ledger:
        raise DatasetError(f"{folder}: no votes imported yet; run `mfcurate label-round "
                           "import` first")
    ds = Dataset.open(dataset or rnd.dataset)
    by_obj = votes_by_object(ledger)
    prior = prior_rows(ds, [o.object_key for o in rnd.objects])
    decisions: dict[str, tuple[str, dict[str, Any]]] = {}
    rows = []
    for o in rnd.objects:
        d = decide(by_obj.get(o.object_key, {}), rule, senior)
        before = (prior.get(o.object_key) or {}).get("label")
        if d is not None:
            label = written_label(d.vote, before)
            decisions[o.object_key] = (label, {
                "round": rnd.round_id, "rule": rule, "senior": senior,
                "decided_by": d.decided_by, "votes": d.n_votes, "equivocal": d.equivocal,
                "label_before": before})
        rows.append((o, d, before, decisions.get(o.object_key, (None, {}))[0]))
    ds.write_layers(layer_tables(ds, rnd, vote_records(rnd, ledger), decisions), part=PART)
    return _report(Path(folder), ds, rnd, rows, by_obj, rule, senior)


def _report(folder: Path, ds: Dataset, rnd: Round, rows: list[Any],
            by_obj: dict[str, dict[str, str]], rule: str, senior: str | None) -> Resolution:
    import csv
    import io

    from mfcurate.labelround.agreement import grouped_agreement
    from mfcurate.labelround.plots import agreement_png

    tumour = {r["image_key"]: r["tumour_type"]
              for r in ds.images(columns=["image_key", "tumour_type"]).to_pylist()}
    groups = {o.object_key: tumour.get(o.image_key) or "unknown" for o, *_ in rows}
    labels = {o.object_key: lab for o, d, _, lab in rows if d is not None}
    agree = grouped_agreement(by_obj, groups, rnd.raters, labels)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["object_key", "image_key", "tumour_type", "why", "new", *rnd.raters,
                "decision", "decided_by", "equivocal", "label_before", "label"])
    by_label: dict[str, int] = {}
    by_decided: dict[str, int] = {}
    for o, d, before, lab in rows:
        v = by_obj.get(o.object_key, {})
        w.writerow([o.object_key, o.image_key, groups[o.object_key], o.why, o.new,
                    *(v.get(r, "") for r in rnd.raters), d.vote if d else "",
                    d.decided_by if d else "no votes", d.equivocal if d else "", before or "",
                    lab or ""])
        if d is not None:
            by_label[str(lab)] = by_label.get(str(lab), 0) + 1
            by_decided[d.decided_by] = by_decided.get(d.decided_by, 0) + 1
    files = {"resolution": folder / "resolution.csv", "agreement": folder / "agreement.json",
             "plot": folder / "agreement.png"}
    atomic_write_bytes(files["resolution"], buf.getvalue().encode())
    atomic_write_json(files["agreement"], {"round": rnd.round_id, "rule": rule,
                                           "senior": senior, **agree})
    title = f"label round {rnd.round_id} ({rule}{', senior ' + senior if senior else ''})"
    atomic_write_bytes(files["plot"], agreement_png(agree["overall"], title))
    ov = agree["overall"]
    return Resolution(len(rows), len(labels), dict(sorted(by_label.items())),
                      dict(sorted(by_decided.items())), ov["equivocal"], ov.get("unresolved"),
                      agree, files)
