"""The mask-fused ResNet18 of OMG-Net.

``torchvision.models.resnet18`` with a mask branch: the binary mask ``(B, 1, H, W)`` goes
through its own ``Conv2d(1, 64, 7, stride=2, padding=3, bias=True)``, whose output is *added*
to the RGB ``conv1`` output before ``bn1``; then ``bn1 -> relu -> maxpool -> layer1..4 ->
global average pool -> fc(512, 2)`` as usual.  ``use_mask=False`` is the RGB-only ablation
(the branch does not exist, the mask is ignored).

Inputs: ``rgb`` ``(B, 3, H, W)`` float, ImageNet-normalised; ``mask`` ``(B, 1, H, W)`` float in
{0, 1}.  Output: ``(B, 2)`` logits (class 1 = mitotic figure).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from mfcurate.errors import SourceFormatError

#: ImageNet mean and std of the RGB channels (inputs scaled to [0, 1]).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class MaskFusedResNet18(nn.Module):
    """ResNet18 with a summed mask branch (see module docstring).

    Args:
        use_mask: build and use the mask branch.
        num_classes: outputs of the head.
    """

    def __init__(self, use_mask: bool = True, num_classes: int = 2) -> None:
        super().__init__()
        from torchvision.models import resnet18

        self.backbone = resnet18(weights=None)
        self.backbone.fc = nn.Linear(self.backbone.fc.in_features, num_classes)
        self.use_mask = use_mask
        self.mask_conv: nn.Conv2d | None = (
            nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=True) if use_mask else None)

    def forward(self, rgb: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``(B, num_classes)`` of ``rgb`` ``(B, 3, H, W)`` and ``mask`` ``(B, 1, H, W)``."""
        b = self.backbone
        x = b.conv1(rgb)
        if self.mask_conv is not None:
            if mask is None:
                raise ValueError("this model uses the mask branch; pass a mask")
            x = x + self.mask_conv(mask)
        x = b.maxpool(b.relu(b.bn1(x)))
        x = b.layer4(b.layer3(b.layer2(b.layer1(x))))
        x = torch.flatten(b.avgpool(x), 1)
        out: torch.Tensor = b.fc(x)
        return out


def load_pretrained(model: MaskFusedResNet18, path: Path | str) -> list[str]:
    """Load a torchvision ResNet18 state dict (e.g. ImageNet weights) into the backbone.

    The file is read with ``torch.load(weights_only=True)``; a dict wrapped under
    ``"state_dict"`` or ``"model"`` and keys prefixed ``"module."``/``"backbone."`` are
    accepted.  The classification head (``fc.*``) is skipped when its shape differs (the
    ImageNet head has 1000 classes); the mask branch keeps its random initialisation.

    Args:
        model: the model to fill.
        path: the ``.pth`` file.

    Returns:
        Names of the backbone parameters that were *not* loaded (the head, usually).

    Raises:
        FileNotFoundError: no such file.
        SourceFormatError: not a state dict, or it does not fit a ResNet18.
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"pretrained weights {p} do not exist")
    try:
        obj: Any = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise SourceFormatError(p, f"not a PyTorch state dict ({exc})") from exc
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    elif isinstance(obj, dict) and "model" in obj and isinstance(obj["model"], dict):
        obj = obj["model"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise SourceFormatError(p, "expected a dict of tensors (a torchvision state dict)")
    state: dict[str, torch.Tensor] = {}
    for k, v in obj.items():
        for prefix in ("module.", "backbone."):
            if k.startswith(prefix):
                k = k[len(prefix):]
        state[k] = v
    own = model.backbone.state_dict()
    unknown = [k for k in state if k not in own]
    if unknown or "conv1.weight" not in state:
        raise SourceFormatError(p, f"not a ResNet18 state dict (unexpected keys {unknown[:3]}"
                                   f"{'' if 'conv1.weight' in state else ', no conv1.weight'})")
    skipped = []
    for k in list(state):
        if state[k].shape != own[k].shape:
            if k.startswith("fc."):
                skipped.append(k)
                del state[k]
            else:
                raise SourceFormatError(p, f"{k} has shape {tuple(state[k].shape)}, a ResNet18 "
                                           f"needs {tuple(own[k].shape)}")
    missing = [k for k in own if k not in state]
    model.backbone.load_state_dict(state, strict=False)
    return sorted(set(missing) | set(skipped))


def build_model(use_mask: bool = True, pretrained: Path | str | None = None) -> MaskFusedResNet18:
    """A fresh model, randomly initialised or with backbone weights from ``pretrained``."""
    model = MaskFusedResNet18(use_mask=use_mask)
    if pretrained is not None:
        load_pretrained(model, pretrained)
    return model
