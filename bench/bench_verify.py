"""What the read-side checks cost on a 1M-object dataset (issue 13).

Every open stats each listed file (present, size as listed); every first read of a file checks
its row count and that it holds only its source's rows.  This benchmark builds a dataset of
1,000,000 objects (10 sources, and again 1,000 sources), then times, in the same process:
opening it and streaming one column of every object with the checks, and the same with the
checks switched off (baseline), and ``verify()`` (the full re-hash of ``info --verify``).

Usage: ``python bench/bench_verify.py [--objects 1000000]``
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from unittest import mock

from bench_commit import build

from mfcurate.dataset import Dataset


def _read_all(root: Path) -> int:
    ds = Dataset.open(root)
    return sum(t.num_rows for t in ds.iter_objects(columns=["object_key"]))


def _read_all_unchecked(root: Path) -> int:
    """The same read with the checks off: no stat per file, no per-file row/source check."""
    with mock.patch("mfcurate.dataset.manifest.check_files_present"):
        ds = Dataset.open(root)
    ds._checked = _Everything()  # type: ignore[assignment]
    return sum(t.num_rows for t in ds.iter_objects(columns=["object_key"]))


class _Everything(set):  # type: ignore[type-arg]
    """A ``_checked`` set that claims every file was already checked."""

    def __contains__(self, item: object) -> bool:
        return True


def _timed(root: Path, reps: int = 3) -> tuple[float, float]:
    """Median seconds with and without the checks, runs alternated (same cache state)."""
    on, off = [], []
    for _ in range(reps):
        for fn, out in ((_read_all, on), (_read_all_unchecked, off)):
            t0 = time.perf_counter()
            fn(root)
            out.append(time.perf_counter() - t0)
    return statistics.median(on), statistics.median(off)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--objects", type=int, default=1_000_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for n_sources in (10, 1000):
            root = build(Path(tmp) / f"ds{n_sources}", n_sources, args.objects).root
            n = _read_all(root)
            with_checks, without = _timed(root)
            t0 = time.perf_counter()
            problems = Dataset.open(root).verify()
            full = time.perf_counter() - t0
            print(f"{n_sources:5d} parts, {n:,} objects: open + read one column "
                  f"{with_checks:.2f} s with the checks, {without:.2f} s without "
                  f"(+{(with_checks - without) * 1e3:.0f} ms, "
                  f"{with_checks / without:.2f}x); info --verify (re-hash) {full:.2f} s, "
                  f"{len(problems)} problems")


if __name__ == "__main__":
    main()
