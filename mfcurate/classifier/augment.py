"""Batch augmentation as tensor ops: H&E stain perturbation, flips and 90° rotations.

Stain perturbation (Tellez et al.) in the convention of OMG-Net's code, i.e. scikit-image
>= 0.18 ``separate_stains``/``combine_stains``:

* stain matrix rows (Ruifrok-Johnston, not unit-normalised): H = (0.65, 0.70, 0.29),
  E = (0.07, 0.99, 0.11), residual R = H x E;
* concentrations ``S = (ln(max(rgb, 1e-6)) / ln(1e-6)) @ inv(M)`` for ``rgb`` in [0, 1], i.e.
  optical density (natural log) divided by ``-ln(1e-6) = 13.8155``;
* per sample and per channel ``alpha ~ U(1 - sigma, 1 + sigma)``, ``beta ~ U(-sigma, sigma)``,
  ``S' = alpha * S + beta``;
* ``rgb' = clip(exp(-(S' * 13.8155) @ M), 0, 1)``.

In this convention ``sigma = 0.014`` (the authors' code) is a realistic stain variation and
``sigma = 0.14`` (the paper's text) turns nuclei black and background white or pink; see
``docs/classifier.md``.  Unlike scikit-image the concentrations are not clipped at zero, so
``alpha = 1, beta = 0`` is an exact identity.

All functions take and return ``(B, 3, H, W)`` float tensors in [0, 1] (and masks
``(B, 1, H, W)``), on any device.
"""

from __future__ import annotations

import math

import torch

#: Stain OD vectors (rows: haematoxylin, eosin, residual = H x E), OMG-Net / skimage.
_H = (0.65, 0.70, 0.29)
_E = (0.07, 0.99, 0.11)


def stain_matrix(dtype: torch.dtype = torch.float32,
                 device: torch.device | str = "cpu") -> torch.Tensor:
    """``(3, 3)`` matrix ``M`` with rows H, E, residual (rgb OD = S @ M)."""
    h = torch.tensor(_H, dtype=torch.float64)
    e = torch.tensor(_E, dtype=torch.float64)
    m = torch.stack([h, e, torch.linalg.cross(h, e)])
    return m.to(dtype=dtype, device=device)


LOG_ADJUST = -math.log(1e-6)  # 13.8155...


def rgb_to_stains(rgb: torch.Tensor) -> torch.Tensor:
    """``(B, 3, H, W)`` RGB in [0, 1] -> ``(B, 3, H, W)`` stain concentrations (H, E, R)."""
    m = stain_matrix(torch.float64, rgb.device)
    inv = torch.linalg.inv(m).to(rgb.dtype)
    od = -torch.log(rgb.clamp_min(1e-6)) / LOG_ADJUST
    return torch.einsum("bchw,cd->bdhw", od, inv).contiguous()


def stains_to_rgb(stains: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`rgb_to_stains`, clipped to [0, 1]."""
    m = stain_matrix(stains.dtype, stains.device)
    od = torch.einsum("bchw,cd->bdhw", stains * LOG_ADJUST, m)
    # einsum returns a channels-last view; convolutions are ~2x slower on it
    return torch.exp(-od).clamp(0.0, 1.0).contiguous()


def perturb_stains(rgb: torch.Tensor, alpha: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """Apply ``S' = alpha * S + beta`` with ``alpha``, ``beta`` of shape ``(B, 3)``."""
    s = rgb_to_stains(rgb)
    s = s * alpha[:, :, None, None] + beta[:, :, None, None]
    return stains_to_rgb(s)


def random_stain(rgb: torch.Tensor, sigma: float,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Tellez stain augmentation with ``alpha ~ U(1-sigma, 1+sigma)``, ``beta ~ U(-sigma, sigma)``.

    Draws are per sample and per stain channel.  ``sigma <= 0`` returns the input.
    """
    if sigma <= 0:
        return rgb
    b = rgb.shape[0]
    u = torch.rand((2, b, 3), generator=generator, device="cpu").to(rgb.device, rgb.dtype)
    alpha = 1.0 + sigma * (2.0 * u[0] - 1.0)
    beta = sigma * (2.0 * u[1] - 1.0)
    return perturb_stains(rgb, alpha, beta)


def random_dihedral(rgb: torch.Tensor, mask: torch.Tensor, hflip: float = 0.5,
                    vflip: float = 0.5, rot90: bool = True,
                    generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Random horizontal/vertical flips and 90° rotations, the same for image and mask.

    Args:
        rgb: ``(B, C, H, W)`` with ``H == W`` when ``rot90``.
        mask: ``(B, 1, H, W)``.
        hflip: probability of a horizontal flip.
        vflip: probability of a vertical flip.
        rot90: also rotate by k * 90°, k uniform in {0, 1, 2, 3}.
        generator: torch RNG (CPU) for reproducibility.

    Returns:
        The transformed ``(rgb, mask)``.
    """
    b = rgb.shape[0]
    u = torch.rand((3, b), generator=generator)
    hf = (u[0] < hflip).tolist()
    vf = (u[1] < vflip).tolist()
    ks = (u[2] * 4).long().clamp(max=3).tolist() if rot90 else [0] * b
    out_rgb, out_mask = rgb.clone(), mask.clone()
    # group samples by their transform so each group is one tensor op
    groups: dict[tuple[bool, bool, int], list[int]] = {}
    for i in range(b):
        groups.setdefault((hf[i], vf[i], ks[i]), []).append(i)
    for (h, v, k), ids in groups.items():
        if not h and not v and k == 0:
            continue
        sel = torch.tensor(ids, device=rgb.device)
        x, m = rgb.index_select(0, sel), mask.index_select(0, sel)
        dims = [d for d, on in ((3, h), (2, v)) if on]
        if dims:
            x, m = torch.flip(x, dims), torch.flip(m, dims)
        if k:
            x, m = torch.rot90(x, k, (2, 3)), torch.rot90(m, k, (2, 3))
        out_rgb[sel], out_mask[sel] = x, m
    return out_rgb, out_mask
