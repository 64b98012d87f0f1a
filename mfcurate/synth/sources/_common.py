"""Small helpers shared by the fake-source generators."""

from __future__ import annotations

from pathlib import Path


def cut_mid_line(path: Path) -> bool:
    """True when cutting the file at half its size leaves a partial last line.

    A text file cut exactly after a line break is a valid shorter file; only the others can be
    detected as truncated, so generators list only those as ``annotation_files``.
    """
    data = path.read_bytes()
    return len(data) > 1 and not data[: len(data) // 2].endswith((b"\n", b"\r"))
