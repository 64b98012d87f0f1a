"""Stain augmentation and flips/rotations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mfcurate.classifier.augment import (
    perturb_stains,
    random_dihedral,
    random_stain,
    rgb_to_stains,
    stain_matrix,
    stains_to_rgb,
)


def _batch() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.rand((4, 3, 16, 16), generator=g) * 0.9 + 0.05


def test_identity_round_trip_is_exact() -> None:
    x = _batch().double()
    assert torch.allclose(stains_to_rgb(rgb_to_stains(x)), x, atol=1e-10)
    ones, zeros = torch.ones(4, 3, dtype=torch.float64), torch.zeros(4, 3, dtype=torch.float64)
    assert torch.allclose(perturb_stains(x, ones, zeros), x, atol=1e-10)


def test_matrix_is_omg_net_convention() -> None:
    inv = torch.linalg.inv(stain_matrix(torch.float64)).numpy()
    np.testing.assert_allclose(inv[0], [1.4847, -1.0770, -0.5250], atol=1e-4)


def test_known_calibration_point() -> None:
    # nucleus pixel (90, 60, 140) at the extreme corner alpha = 1 - 0.014, beta = -0.014
    x = torch.tensor([90.0, 60.0, 140.0], dtype=torch.float64).view(1, 3, 1, 1) / 255
    a = torch.full((1, 3), 1 - 0.014, dtype=torch.float64)
    b = torch.full((1, 3), -0.014, dtype=torch.float64)
    out = perturb_stains(x, a, b)
    rgb = (out.view(3) * 255).round().tolist()
    assert abs(rgb[0] - 101) <= 1 and abs(rgb[1] - 84) <= 1 and abs(rgb[2] - 171) <= 1


def test_sigma_scales_the_change() -> None:
    x = _batch()
    torch.manual_seed(1)
    small = (random_stain(x, 0.014) - x).abs().mean()
    torch.manual_seed(1)
    big = (random_stain(x, 0.14) - x).abs().mean()
    assert 0 < small < big
    assert torch.equal(random_stain(x, 0.0), x)


def test_draws_are_per_sample_and_channel_within_sigma() -> None:
    x = _batch().double()
    sigma = 0.05
    out = random_stain(x, sigma, generator=torch.Generator().manual_seed(4))
    # the draws are alpha ~ U(1 - s, 1 + s), beta ~ U(-s, s) per sample and channel
    u = torch.rand((2, 4, 3), generator=torch.Generator().manual_seed(4)).double()
    alpha, beta = 1 + sigma * (2 * u[0] - 1), sigma * (2 * u[1] - 1)
    torch.testing.assert_close(out, perturb_stains(x, alpha, beta))
    # recover them from the output: S' = alpha S + beta on every pixel the clip left alone
    s_in, s_out = rgb_to_stains(x), rgb_to_stains(out)
    free = ((out > 1e-6) & (out < 1 - 1e-9)).all(dim=1)
    slopes = []
    for b in range(len(x)):
        assert int(free[b].sum()) > 30  # random colours: some leave the gamut
        for c in range(3):
            a_, b_ = np.polyfit(s_in[b, c][free[b]].numpy(), s_out[b, c][free[b]].numpy(), 1)
            assert a_ == pytest.approx(float(alpha[b, c]), abs=1e-6)
            assert b_ == pytest.approx(float(beta[b, c]), abs=1e-6)
            assert 1 - sigma <= a_ <= 1 + sigma and -sigma <= b_ <= sigma
            slopes.append(a_)
    assert len({round(v, 6) for v in slopes}) == len(slopes)  # a draw per sample and channel


def test_dihedral_moves_image_and_mask_together() -> None:
    x = _batch()
    mask = (x[:, :1] > 0.5).float()
    x2 = x.clone()
    x2[:, 0:1] = mask  # channel 0 equals the mask before the transform
    g = torch.Generator().manual_seed(3)
    out, m = random_dihedral(x2, mask, generator=g)
    assert torch.equal(out[:, 0:1], m)
    assert not torch.equal(out, x2)  # something moved
    # a dihedral transform keeps the multiset of pixel values of each sample
    for i in range(len(x)):
        assert torch.equal(out[i].flatten().sort().values, x2[i].flatten().sort().values)
