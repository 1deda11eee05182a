"""Inflation of 2D weights into 3D networks, and when the identical-frames property holds."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torchvision.models import resnet18 as tv_resnet18

from cbam3d import models
from cbam3d.models.inflation import inflate_tensor


def frames_of(x2d: torch.Tensor, frames: int) -> torch.Tensor:
    """(N, C, H, W) -> a clip (N, C, frames, H, W) whose frames all equal the image."""
    return x2d.unsqueeze(2).expand(-1, -1, frames, -1, -1).contiguous()


@pytest.mark.parametrize("depth, attention", [(18, "cbam"), (50, "bam")])
def test_centre_inflation_reproduces_the_2d_network_on_identical_frames(depth, attention, randomize, random_tensor):
    """'centre' inflation: on a clip of identical frames the 3D network's logits equal the 2D ones.

    In float64: in float32 the 2D and 3D convolutions sum in different orders, and through ResNet-50's
    randomised BatchNorms the rounding alone reaches 2e-4 relative for some initialisations."""
    net2d = randomize(models.resnet2d(depth, attention=attention, num_classes=10), seed=depth).double().eval()
    net3d = models.inflate(net2d.state_dict(), models.resnet3d(depth, attention=attention, num_classes=10))
    net3d = net3d.double().eval()
    x = random_tensor(1, 3, 32, 32).double()
    with torch.no_grad():
        torch.testing.assert_close(net3d(frames_of(x, 4)), net2d(x), rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("mode", ["centre", "repeat"])
def test_inflate_copies_every_2d_tensor_into_the_3d_network(mode, randomize):
    """Every tensor of the 2D network reaches the 3D one: kernels summed over time (and, for 'centre',
    the centre slice, the others zero) equal the 2D kernels; BN, attention and fc tensors are equal."""
    net2d = randomize(models.resnet2d(18, attention="cbam", num_classes=10), seed=3)
    net3d = models.inflate(net2d.state_dict(), models.resnet3d(18, attention="cbam", num_classes=10), mode=mode)
    state2d, state3d = net2d.state_dict(), net3d.state_dict()
    assert state3d.keys() == state2d.keys()
    inflated = 0
    for key, weight in state2d.items():
        copied = state3d[key]
        if copied.dim() == weight.dim() + 1:
            inflated += 1
            torch.testing.assert_close(copied.sum(dim=2), weight, msg=key)
            if mode == "centre":
                centre = copied.shape[2] // 2
                assert torch.equal(copied[:, :, centre], weight), key
                assert not torch.cat([copied[:, :, :centre], copied[:, :, centre + 1 :]], dim=2).any(), key
            else:
                assert all(torch.equal(copied[:, :, t], copied[:, :, 0]) for t in range(copied.shape[2])), key
        else:
            assert torch.equal(copied, weight), key
    assert inflated == sum(isinstance(m, nn.Conv2d) for m in net2d.modules())
    assert torch.equal(net3d.fc.weight, net2d.fc.weight) and torch.equal(net3d.bn1.weight, net2d.bn1.weight)
    assert not torch.equal(net3d.bn1.weight, torch.ones_like(net3d.bn1.weight))  # not the default init


def test_centre_inflation_also_holds_with_train_mode_batch_norm(randomize, random_tensor):
    """Batch statistics of identical frames equal those of the images, so train mode agrees as well.

    In float64: batch statistics over two samples amplify float32 rounding in the deepest layers."""
    net2d = randomize(models.resnet2d(18, attention="cbam", num_classes=10), seed=1).double().train()
    net3d = models.resnet3d(18, attention="cbam", num_classes=10).double()
    models.inflate(net2d.state_dict(), net3d).train()
    x = random_tensor(2, 3, 32, 32).double()
    torch.testing.assert_close(net3d(frames_of(x, 3)), net2d(x), rtol=1e-9, atol=1e-9)


def test_repeat_inflation_matches_only_where_the_temporal_window_is_inside_the_clip(random_tensor):
    """'repeat' (kernel / kt over kt frames) reproduces the 2D conv on identical frames away from the clip
    ends; within kt // 2 frames of an end, zero padding drops taps and scales the response by the
    fraction of taps left (here 2 of 3)."""
    conv2d = nn.Conv2d(3, 4, 3, padding=1, bias=False)
    conv3d = nn.Conv3d(3, 4, 3, padding=1, bias=False)
    models.inflate(conv2d.state_dict(), conv3d, mode="repeat")
    x = random_tensor(1, 3, 8, 8)
    with torch.no_grad():
        out2d, out3d = conv2d(x), conv3d(frames_of(x, 5))
    for t in (1, 2, 3):
        torch.testing.assert_close(out3d[:, :, t], out2d)
    for t in (0, 4):
        torch.testing.assert_close(out3d[:, :, t], out2d * 2 / 3)


def test_repeat_inflation_does_not_reproduce_a_whole_network_with_temporal_padding(randomize, random_tensor):
    """The edge effect of 'repeat' propagates: end to end the logits differ (documented limitation)."""
    net2d = randomize(models.resnet2d(18, num_classes=10), seed=2).eval()
    net3d = models.inflate(net2d.state_dict(), models.resnet3d(18, num_classes=10), mode="repeat").eval()
    x = random_tensor(1, 3, 32, 32)
    with torch.no_grad():
        assert not torch.allclose(net3d(frames_of(x, 4)), net2d(x), rtol=1e-3, atol=1e-3)


def test_inflate_tensor_centre_and_repeat_preserve_the_temporal_sum(random_tensor):
    """Both modes keep sum over time of the 3D kernel equal to the 2D kernel (the response to a constant clip)."""
    weight = random_tensor(4, 3, 3, 3)
    for mode in ("centre", "repeat"):
        inflated = inflate_tensor(weight, 5, mode)
        assert inflated.shape == (4, 3, 5, 3, 3)
        torch.testing.assert_close(inflated.sum(dim=2), weight)
    with pytest.raises(ValueError, match="odd temporal kernel"):
        inflate_tensor(weight, 4, "centre")
    with pytest.raises(ValueError, match="'centre', 'repeat'"):
        inflate_tensor(weight, 3, "middle")


def test_inflate_rejects_another_architecture_naming_the_tensors():
    with torch.device("meta"):
        net2d = models.resnet2d(18, num_classes=10)
        deeper, with_cbam = models.resnet3d(34, num_classes=10), models.resnet3d(18, attention="cbam", num_classes=10)
    with pytest.raises(ValueError, match="layer1.2"):
        models.inflate(net2d.state_dict(), deeper)
    with pytest.raises(ValueError, match="attention"):
        models.inflate(net2d.state_dict(), with_cbam)


def test_inflate_with_a_different_class_count_needs_exclude_and_keeps_the_3d_classifier():
    net2d = models.resnet2d(18)
    net3d = models.resnet3d(18, num_classes=7)
    fc = net3d.fc.weight.clone()
    with pytest.raises(ValueError, match=r"exclude=\('fc.',\)"):
        models.inflate(net2d.state_dict(), net3d)
    models.inflate(net2d.state_dict(), net3d, exclude=("fc.",))
    assert torch.equal(net3d.fc.weight, fc)
    torch.testing.assert_close(net3d.layer1[0].conv1.weight[:, :, 1], net2d.layer1[0].conv1.weight)


def test_torchvision_imagenet_resnet18_inflates_into_r3d_18(randomize):
    """torchvision's 2D resnet18 and our r3d_18 share names, so ImageNet weights start an R3D-18."""
    net2d = randomize(tv_resnet18(), seed=4)
    net3d = models.inflate(net2d.state_dict(), models.r3d_18(), exclude=("fc.",))
    assert net3d.conv1.weight.shape == (64, 3, 3, 7, 7)
    assert torch.equal(net3d.conv1.weight[:, :, 1], net2d.conv1.weight)
    assert torch.equal(net3d.layer4[1].conv2.weight[:, :, 1], net2d.layer4[1].conv2.weight)
    assert torch.equal(net3d.layer2[0].downsample[0].weight[:, :, 0], net2d.layer2[0].downsample[0].weight)
    state2d, state3d = net2d.state_dict(), net3d.state_dict()
    for key in ("bn1.weight", "layer3.0.bn1.bias", "layer3.0.bn1.running_var", "layer4.1.bn2.running_mean"):
        assert torch.equal(state3d[key], state2d[key]), key
