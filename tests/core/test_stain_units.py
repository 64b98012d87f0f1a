"""The shared stain maths and µm/px resolution."""

import numpy as np
import pytest

from mfcurate.stain import HED_STAINS, deconvolve, haematoxylin_od, optical_density, stains_to_rgb
from mfcurate.units import Mpp, MppUnknownError, area_um2, resolve_mpp


def test_deconvolution_agrees_with_scikit_image():
    from skimage.color import rgb2hed

    rng = np.random.default_rng(0)
    rgb = rng.integers(1, 256, size=(32, 48, 3), dtype=np.uint8)
    ours = deconvolve(rgb)
    ref = rgb2hed(rgb)  # skimage scales OD by ln(1e-6): its concentrations are ours / 6
    np.testing.assert_allclose(np.maximum(ours / 6.0, 0), ref, atol=2e-3)  # skimage clips at 0
    np.testing.assert_allclose(haematoxylin_od(rgb), np.maximum(ours[:, :, 0], 0), atol=1e-6)


def test_od_and_rendering_are_inverse():
    conc = np.zeros((4, 5, 3))
    conc[..., 0] = np.linspace(0, 1.2, 5)
    conc[..., 1] = 0.3
    rgb = stains_to_rgb(conc, HED_STAINS)
    back = deconvolve(rgb)
    np.testing.assert_allclose(back[..., :2], conc[..., :2], atol=0.03)
    assert optical_density(np.full((1, 1, 3), 255, np.uint8)).max() == 0.0


def test_resolve_mpp_order_and_errors():
    assert resolve_mpp(0.25, None) == Mpp(0.25, 0.25, "table")
    assert resolve_mpp(None, None, file_mpp=(0.5, 0.5)).origin == "file"
    assert resolve_mpp(0.25, 0.25, override=0.5) == Mpp(0.5, 0.5, "override")
    assert resolve_mpp(float("nan"), -1, default=0.3) == Mpp(0.3, 0.3, "default")
    with pytest.raises(MppUnknownError, match="img7"):
        resolve_mpp(None, None, what="img7")
    assert area_um2(100, 0.25, 0.5) == pytest.approx(12.5)
    assert area_um2(100, None, None) is None
    assert Mpp(0.25, 0.25).um_to_px(7.5) == pytest.approx(30.0)
