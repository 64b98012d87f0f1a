"""The mask-fused ResNet18 and loading user weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mfcurate.classifier.model import MaskFusedResNet18, build_model, load_pretrained
from mfcurate.errors import SourceFormatError


@pytest.fixture(autouse=True)
def _threads() -> None:
    torch.set_num_threads(1)


def _inputs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn((2, 3, 32, 32), generator=g)
    m1 = torch.zeros((2, 1, 32, 32))
    m1[:, :, 10:22, 10:22] = 1
    m2 = torch.zeros((2, 1, 32, 32))
    m2[:, :, 2:8, 20:30] = 1
    return x, m1, m2


def test_mask_branch_changes_the_output() -> None:
    torch.manual_seed(0)
    model = MaskFusedResNet18(use_mask=True).eval()
    x, m1, m2 = _inputs()
    with torch.no_grad():
        a, b = model(x, m1), model(x, m2)
    assert a.shape == (2, 2)
    assert not torch.allclose(a, b)
    # the branch is exactly a 1->64 7x7/2 convolution with bias, summed before bn1
    mc = model.mask_conv
    assert mc is not None and mc.in_channels == 1 and mc.out_channels == 64
    assert mc.kernel_size == (7, 7) and mc.stride == (2, 2) and mc.bias is not None
    with pytest.raises(ValueError, match="mask"):
        model(x)


def test_no_mask_model_ignores_the_mask() -> None:
    torch.manual_seed(0)
    model = MaskFusedResNet18(use_mask=False).eval()
    x, m1, m2 = _inputs()
    with torch.no_grad():
        assert torch.equal(model(x, m1), model(x, m2))
    assert model.mask_conv is None


def test_pretrained_loads_a_torchvision_state_dict(tmp_path: Path) -> None:
    from torchvision.models import resnet18

    torch.manual_seed(5)
    ref = resnet18(weights=None)  # ImageNet-shaped: 1000-class head
    path = tmp_path / "resnet18.pth"
    torch.save(ref.state_dict(), path)
    model = build_model(use_mask=True, pretrained=path)
    assert torch.equal(model.backbone.conv1.weight, ref.conv1.weight)
    assert torch.equal(model.backbone.layer4[1].bn2.running_var, ref.layer4[1].bn2.running_var)
    assert model.backbone.fc.out_features == 2  # the head stays ours
    fresh = MaskFusedResNet18()
    skipped = load_pretrained(fresh, path)
    assert skipped == ["fc.bias", "fc.weight"]
    # wrapped / prefixed dicts work too
    torch.save({"state_dict": {f"module.{k}": v for k, v in ref.state_dict().items()}}, path)
    assert torch.equal(build_model(pretrained=path).backbone.conv1.weight, ref.conv1.weight)


def test_pretrained_rejects_bad_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(SourceFormatError, match=r"bad\.pth"):
        build_model(pretrained=bad)
    torch.save({"foo.weight": torch.zeros(3)}, bad)
    with pytest.raises(SourceFormatError, match="not a ResNet18"):
        build_model(pretrained=bad)
    with pytest.raises(FileNotFoundError):
        build_model(pretrained=tmp_path / "missing.pth")
