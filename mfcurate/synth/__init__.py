"""Synthetic H&E data with known truth, and writers of each source's real on-disk format.

The tests and ``mfcurate demo`` rest on these generators; each returns the truth it planted.
"""

from mfcurate.synth.render import HE_STAINS, Planted, render_tissue, stains_to_rgb

__all__ = ["HE_STAINS", "Planted", "render_tissue", "stains_to_rgb"]
