"""Quality gates of one registration: stop rather than map objects through a wrong transform.

A transform is accepted only when all of its own figures of merit pass (the names are the
keys of ``PairTransform.quality`` and of the error message):

* ``inliers``: RANSAC inliers of the slide-level fit (``global_inliers``), or for the
  tissue-outline fallback its texture NCC (``channel_inliers['texture_ncc']``);
* ``tissue_overlap``: share of the H&E tissue that maps onto pHH3 tissue;
* ``ncc_after``: median NCC of the shared channel inside both tissue masks after the
  refinement, over the refinement windows;
* ``windows_ok``: share of refinement windows whose local fit passed its checks;
* ``residual``: median forward-backward residual of the refinement field (µm).

Two unrelated slides (a synthetic H&E against a real slide) pass the slide-level fit only
by chance and then fail ``ncc_after`` (about 0.04 against 0.9 for a true pair).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mfcurate.errors import RegistrationError


class RegistrationQualityError(RegistrationError):
    """The registration failed one or more of its quality gates.

    Attributes:
        failed: ``[(measure, value, limit)]`` of the failed gates.
    """

    def __init__(self, message: str, failed: list[tuple[str, float, str]]) -> None:
        self.failed = failed
        super().__init__(message)


@dataclass
class QualityGates:
    """Limits of :func:`check_quality` (units in the names).

    Attributes:
        min_inliers: fewest RANSAC inliers of the slide-level fit.
        min_texture_ncc: lowest texture NCC of the tissue-outline fallback.
        min_tissue_overlap: lowest share of H&E tissue landing on pHH3 tissue.
        min_ncc_after: lowest median NCC after refinement.
        min_windows_ok: lowest share of refinement windows that passed.
        max_residual_um: highest median refinement residual.
    """

    min_inliers: int = 30
    min_texture_ncc: float = 0.13
    min_tissue_overlap: float = 0.5
    min_ncc_after: float = 0.25
    min_windows_ok: float = 0.5
    max_residual_um: float = 1.5


def check_quality(quality: dict[str, Any], gates: QualityGates | None = None
                  ) -> list[tuple[str, float, str]]:
    """The gates a transform's ``quality`` dict fails: ``[(measure, value, 'limit')]``.

    Missing figures count as failed (a refinement that saw no tissue has no NCC).
    """
    g = gates or QualityGates()
    failed: list[tuple[str, float, str]] = []

    def num(key: str) -> float:
        v = quality.get(key)
        return float(v) if isinstance(v, (int, float)) and v == v else float("nan")

    if quality.get("global_method") == "tissue_outline":
        ci = quality.get("channel_inliers") or {}
        v = float(ci.get("texture_ncc", float("nan")))
        if not v >= g.min_texture_ncc:
            failed.append(("inliers", v, f">= {g.min_texture_ncc} texture NCC"))
    else:
        v = num("global_inliers")
        if not v >= g.min_inliers:
            failed.append(("inliers", v, f">= {g.min_inliers}"))
    v = num("tissue_overlap")
    if not v >= g.min_tissue_overlap:
        failed.append(("tissue_overlap", v, f">= {g.min_tissue_overlap}"))
    v = num("ncc_after")
    if not v >= g.min_ncc_after:
        failed.append(("ncc_after", v, f">= {g.min_ncc_after}"))
    n_win = num("refine_windows")
    v = num("refine_windows_ok") / n_win if n_win > 0 else float("nan")
    if not v >= g.min_windows_ok:
        failed.append(("windows_ok", v, f">= {g.min_windows_ok}"))
    v = num("residual_median_um")
    if not v <= g.max_residual_um:
        failed.append(("residual", v, f"<= {g.max_residual_um} µm"))
    return failed


def describe_failures(failed: list[tuple[str, float, str]]) -> str:
    """``'ncc_after 0.04 (needs >= 0.25), residual nan (needs <= 1.5 µm)'``."""
    return ", ".join(f"{name} {value:.3g} (needs {limit})" for name, value, limit in failed)
