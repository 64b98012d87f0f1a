"""MIDOG-protocol scoring of mitotic-figure detections, run comparison and plots."""

from mfcurate.scoring.midog import (
    RADIUS_UM,
    Counts,
    ScoreResult,
    match_points,
    score_detections,
)

__all__ = ["RADIUS_UM", "Counts", "ScoreResult", "match_points", "score_detections"]
