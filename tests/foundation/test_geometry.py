"""Geometry: doctests, RLE round trips, image-relative RLE equals a full-size encoding."""

from __future__ import annotations

import doctest

import numpy as np
from pycocotools import mask as mask_utils

import mfcurate.geometry as geometry
from mfcurate.geometry import decode_mask, encode_mask, image_rle_from_box_mask, rle_length


def test_doctests() -> None:
    failed, attempted = doctest.testmod(geometry, optionflags=doctest.ELLIPSIS)
    assert attempted > 5 and failed == 0


def test_rle_round_trip_and_length() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        h, w = rng.integers(1, 60, size=2)
        m = rng.random((h, w)) > 0.6
        counts = encode_mask(m)
        assert np.array_equal(decode_mask(counts, h, w), m)
        assert rle_length(counts) == h * w


def test_image_rle_matches_full_encoding() -> None:
    rng = np.random.default_rng(1)
    H, W = 97, 131
    for _ in range(10):
        m = rng.random((20, 30)) > 0.5
        x0, y0 = int(rng.integers(-5, W - 25)), int(rng.integers(-5, H - 15))
        full = np.zeros((H, W), np.uint8)
        ys, xs = np.nonzero(m)
        keep = (ys + y0 >= 0) & (ys + y0 < H) & (xs + x0 >= 0) & (xs + x0 < W)
        full[ys[keep] + y0, xs[keep] + x0] = 1
        rle = image_rle_from_box_mask(encode_mask(m), (x0, y0, 30, 20), H, W)
        decoded = mask_utils.decode({"size": rle["size"], "counts": rle["counts"].encode()})
        assert np.array_equal(decoded, full)
