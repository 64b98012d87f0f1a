"""Reading a rater's file back, validating it, and keeping every vote in the round's ledger.

A rater returns either QuPath GeoJSON (as *Export objects as GeoJSON* writes it) or the CSV
sheet.  A file is checked as a whole before anything is stored; each problem is one line
naming the file:

* **unknown object**: a feature or row names an object that is not in the round (a feature
  without a name and with an id of no package, i.e. one the rater drew, is ignored);
* **duplicated vote**: the same object twice in one file, or a vote on an object the rater
  already voted on in another file (``replace`` lets the new file win);
* **wrong rater**: the file's features come from another rater's package (their ids encode
  round, rater and object), the sheet's ``rater`` column names someone else, or the rater
  is not one of the round's.

The ledger ``ROUND/votes.csv`` holds one row per (rater, object): label, time of the import
that first recorded it, the file and its SHA-256.  Re-importing a file whose content did not
change changes nothing; a changed file replaces its own earlier votes (a vote whose label is
unchanged keeps its time).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mfcurate.dataset import atomic_write_bytes, sha256_file
from mfcurate.errors import SourceFormatError
from mfcurate.labelround.classes import UnknownClass, class_name_of, vote_of
from mfcurate.labelround.round import Round
from mfcurate.review.export import safe_name

LEDGER = "votes.csv"
LEDGER_COLUMNS = ("round", "rater", "object_key", "label", "time", "file", "sha256")


@dataclass(frozen=True)
class Vote:
    """One ledger row (see the module docstring)."""

    round: str
    rater: str
    object_key: str
    label: str
    time: str
    file: str
    sha256: str


@dataclass
class FileVotes:
    """The votes of one rater file.

    Attributes:
        path: the file.
        rater: whose votes they are.
        votes: ``object key -> vote label``.
        abstained: objects of the file left without a class.
        ignored: features that are no object of the round and have no name (drawn by the
            rater).
        sha256: checksum of the file's bytes.
    """

    path: Path
    rater: str
    votes: dict[str, str] = field(default_factory=dict)
    abstained: int = 0
    ignored: int = 0
    sha256: str = ""


def read_ledger(folder: Path | str) -> list[Vote]:
    """The round's ledger (empty when no vote was imported yet)."""
    path = Path(folder) / LEDGER
    if not path.exists():
        return []
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    try:
        return [Vote(**{c: r[c] for c in LEDGER_COLUMNS}) for r in rows]
    except KeyError as exc:
        raise SourceFormatError(path, f"ledger lacks column {exc}") from None


def write_ledger(folder: Path | str, votes: Iterable[Vote]) -> Path:
    """Write the ledger atomically, rows sorted by (rater, object key)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(LEDGER_COLUMNS)
    for v in sorted(votes, key=lambda v: (v.rater, v.object_key)):
        w.writerow([getattr(v, c) for c in LEDGER_COLUMNS])
    path = Path(folder) / LEDGER
    atomic_write_bytes(path, buf.getvalue().encode())
    return path


def read_rater_file(rnd: Round, path: Path | str, rater: str | None = None) -> FileVotes:
    """Read and validate one rater file (``.csv`` sheet, else GeoJSON).

    Args:
        rnd: the round.
        path: the file.
        rater: whose file it is; default: told by the file (feature ids, ``rater`` column)
            or its place (a package folder or a file name starting with a rater's name).

    Raises:
        SourceFormatError: any problem listed in the module docstring, or a malformed file.
    """
    p = Path(path)
    if not p.is_file():
        raise SourceFormatError(p, "rater file does not exist")
    if rater is not None and rater not in rnd.raters:
        raise SourceFormatError(p, f"wrong rater: {rater!r} is not a rater of round "
                                   f"{rnd.round_id} ({', '.join(rnd.raters)})")
    if p.suffix.lower() in (".csv", ".tsv", ".txt"):
        fv = _read_sheet(rnd, p, rater)
    else:
        fv = _read_geojson(rnd, p, rater)
    fv.sha256 = sha256_file(p)
    return fv


def _rater_from_place(rnd: Round, p: Path) -> str | None:
    safe = {safe_name(r): r for r in rnd.raters}
    for part in reversed(p.resolve().parts[-3:-1]):  # its folder or the one above
        if part in safe:
            return safe[part]
    for s, r in sorted(safe.items(), key=lambda kv: -len(kv[0])):
        if p.stem == s or p.stem.startswith((f"{s}-", f"{s}_")):
            return r
    return None


def _settle_rater(rnd: Round, p: Path, given: str | None, told: set[str]) -> str:
    """Whose file it is: ``given`` > what the file says > its place; checked against all."""
    if len(told) > 1:
        raise SourceFormatError(p, f"wrong rater: the file mixes the packages of "
                                   f"{', '.join(sorted(told))}")
    bad = sorted(told - set(rnd.raters))
    if bad:
        raise SourceFormatError(p, f"wrong rater: {bad[0]!r} is not a rater of round "
                                   f"{rnd.round_id} ({', '.join(rnd.raters)})")
    from_file = next(iter(told)) if told else None
    claimed = given or _rater_from_place(rnd, p)
    if claimed and from_file and claimed != from_file:
        raise SourceFormatError(p, f"wrong rater: the file holds {from_file}'s objects, but "
                                   f"it was given as {claimed}'s")
    who = claimed or from_file
    if who is None:
        raise SourceFormatError(p, "cannot tell whose votes these are; give --rater NAME")
    return who


def _read_geojson(rnd: Round, p: Path, rater: str | None) -> FileVotes:
    try:
        doc = json.loads(p.read_text(encoding="utf-8-sig"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SourceFormatError(p, f"not a GeoJSON file ({exc})") from None
    if isinstance(doc, dict) and doc.get("type") == "FeatureCollection":
        feats = doc.get("features")
    elif isinstance(doc, dict) and doc.get("type") == "Feature":
        feats = [doc]
    else:
        feats = doc
    if not isinstance(feats, list):
        raise SourceFormatError(p, "expected a GeoJSON FeatureCollection or a list of features")
    keys = rnd.by_key()
    ids = rnd.id_index()
    told: set[str] = set()
    seen: dict[str, int] = {}
    fv = FileVotes(p, "")
    for i, f in enumerate(feats):
        if not isinstance(f, dict):
            raise SourceFormatError(p, f"feature {i} is not a JSON object")
        props = f.get("properties") or {}
        name = props.get("name")
        owner = ids.get(str(f.get("id")))
        if name is not None and str(name) in keys:
            key = str(name)
        elif owner is not None:
            key = owner[1]
        elif name is None:
            fv.ignored += 1
            continue
        else:
            raise SourceFormatError(p, f"feature {i}: unknown object {name!r} (not in round "
                                       f"{rnd.round_id})")
        if owner is not None and owner[1] == key:
            told.add(owner[0])
        _record(fv, seen, key, "feature", i, props.get("classification"), class_name_of)
    fv.rater = _settle_rater(rnd, p, rater, told)
    return fv


def _record(fv: FileVotes, seen: dict[str, int], key: str, unit: str, where: int,
            raw: Any, class_text: Callable[[Any], str | None]) -> None:
    """Add one record's vote to ``fv`` (a duplicate or an unknown class is an error).

    ``unit``/``where`` name the record in messages ("feature 3", "line 7"); ``class_text``
    turns the record's raw class (a QuPath classification, a sheet cell) into text.
    """
    if key in seen:
        raise SourceFormatError(fv.path, f"{unit} {where}: duplicated vote for {key} (also "
                                         f"{unit} {seen[key]})")
    seen[key] = where
    try:
        vote = vote_of(class_text(raw))
    except UnknownClass as exc:
        raise SourceFormatError(fv.path, f"{unit} {where} ({key}): {exc}") from None
    if vote is None:
        fv.abstained += 1
    else:
        fv.votes[key] = vote


def _read_sheet(rnd: Round, p: Path, rater: str | None) -> FileVotes:
    try:
        text = p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SourceFormatError(p, f"not UTF-8 text ({exc})") from None
    first = text.splitlines()[0] if text else ""
    delim = max(",;\t", key=first.count)
    reader = csv.DictReader(io.StringIO(text), delimiter=delim)
    cols = [c.strip().lower() for c in reader.fieldnames or []]
    for need in ("object_key", "vote"):
        if need not in cols:
            raise SourceFormatError(p, f"the sheet has no {need!r} column (columns: "
                                       f"{', '.join(cols) or 'none'})")
    keys = rnd.by_key()
    told: set[str] = set()
    seen: dict[str, int] = {}
    fv = FileVotes(p, "")
    for line, raw in enumerate(reader, start=2):
        r = {str(k).strip().lower(): (v or "").strip() for k, v in raw.items() if k}
        key = r["object_key"]
        if not key:
            continue
        if key not in keys:
            raise SourceFormatError(p, f"line {line}: unknown object {key!r} (not in round "
                                       f"{rnd.round_id})")
        if r.get("round") and r["round"] != rnd.round_id:
            raise SourceFormatError(p, f"line {line}: the sheet is of round {r['round']!r}, "
                                       f"not {rnd.round_id!r}")
        if r.get("rater"):
            told.add(r["rater"])
        _record(fv, seen, key, "line", line, r["vote"], str)
    fv.rater = _settle_rater(rnd, p, rater, told)
    return fv


@dataclass
class MergeSummary:
    """What an import changed in the ledger."""

    files: int = 0
    unchanged_files: int = 0
    added: int = 0
    changed: int = 0
    removed: int = 0
    abstained: int = 0
    ignored: int = 0


def merge_votes(rnd: Round, ledger: Sequence[Vote], files: Sequence[FileVotes], now: str,
                replace_other: bool = False) -> tuple[list[Vote], MergeSummary]:
    """The ledger after importing ``files`` (nothing is written; errors leave it as it was).

    Raises:
        SourceFormatError: a duplicated vote across files (unless ``replace_other``).
    """
    by: dict[tuple[str, str], Vote] = {(v.rater, v.object_key): v for v in ledger}
    s = MergeSummary()
    for fv in files:
        s.files += 1
        s.abstained += fv.abstained
        s.ignored += fv.ignored
        fid = str(fv.path.resolve())
        mine = {k: v for k, v in by.items() if v.file == fid}
        if mine and all(v.sha256 == fv.sha256 for v in mine.values()) and \
                {k[1]: v.label for k, v in mine.items()} == fv.votes:
            s.unchanged_files += 1
            continue
        for k in mine:
            if k[1] not in fv.votes:
                del by[k]
                s.removed += 1
        for key, label in sorted(fv.votes.items()):
            old = by.get((fv.rater, key))
            if old is not None and old.file != fid and not replace_other:
                raise SourceFormatError(fv.path, f"duplicated vote: {fv.rater} already voted "
                                                 f"on {key} in {old.file} (use --replace to "
                                                 "let this file win)")
            if old is not None and old.label == label:
                by[(fv.rater, key)] = replace(old, file=fid, sha256=fv.sha256)
                continue
            by[(fv.rater, key)] = Vote(rnd.round_id, fv.rater, key, label, now, fid, fv.sha256)
            if old is None:
                s.added += 1
            else:
                s.changed += 1
    return list(by.values()), s


def votes_by_object(ledger: Iterable[Vote]) -> dict[str, dict[str, str]]:
    """``object key -> {rater: vote label}``."""
    out: dict[str, dict[str, str]] = {}
    for v in ledger:
        out.setdefault(v.object_key, {})[v.rater] = v.label
    return out


def vote_records(rnd: Round, ledger: Iterable[Vote]) -> dict[str, list[dict[str, Any]]]:
    """``object key -> votes`` as ``VOTE_TYPE`` dicts (annotator, label, time, round)."""
    order = {r: i for i, r in enumerate(rnd.raters)}
    out: dict[str, list[dict[str, Any]]] = {}
    for v in sorted(ledger, key=lambda v: (v.object_key, order.get(v.rater, 1 << 30))):
        out.setdefault(v.object_key, []).append(
            {"annotator": v.rater, "label": v.label, "time": v.time, "round": v.round})
    return out
