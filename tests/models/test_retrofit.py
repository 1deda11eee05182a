"""Retrofit: add_attention on torchvision, pytorchvideo and our own networks."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torchvision.models import resnet18 as tv_resnet18
from torchvision.models import video as tv_video

from cbam3d import BAM, CBAM, models
from cbam3d.models.retrofit import IdentityInitAttention


def clip(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(x)


@pytest.mark.parametrize("attention", ["cbam", "bam"])
def test_retrofitted_torchvision_video_resnet_equals_our_model_with_attention(attention, randomize):
    """Retrofitting tv r3d_18 puts attention where r3d_18(attention=...) has it: the state_dicts
    correspond key for key through from_torchvision and the logits agree."""
    retrofitted = models.add_attention(tv_video.r3d_18(num_classes=5), attention)
    randomize(retrofitted, seed=1)
    ours = models.r3d_18(num_classes=5, attention=attention)
    ours.load_state_dict(models.from_torchvision(retrofitted.state_dict()), strict=True)
    x = clip(1, 3, 2, 16, 16)
    torch.testing.assert_close(logits(ours, x), logits(retrofitted, x))


def test_retrofitted_torchvision_2d_resnet_equals_resnet2d_with_cbam(randomize):
    """torchvision's 2D resnet18 shares the official names: its retrofit loads into resnet2d(18, attention="cbam")."""
    retrofitted = randomize(models.add_attention(tv_resnet18(num_classes=5), "cbam"), seed=2)
    ours = models.resnet2d(18, attention="cbam", num_classes=5)
    ours.load_state_dict(retrofitted.state_dict(), strict=True)
    x = clip(1, 3, 32, 32)
    torch.testing.assert_close(logits(ours, x), logits(retrofitted, x))


def test_retrofit_leaves_existing_weights_and_names_untouched():
    model = tv_video.mc3_18()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    models.add_attention(model, "se")
    after = model.state_dict()
    assert all(torch.equal(after[k], v) for k, v in before.items())
    assert set(after) - set(before) == {k for k in after if ".attention." in k}


@pytest.mark.parametrize("attention", ["cbam", "se", "bam"])
def test_identity_init_keeps_the_pretrained_function_and_can_learn(attention, randomize):
    """With identity_init the retrofitted model first computes exactly what the original did, and the
    blend scales receive gradients, so training can turn the attention on."""
    model = randomize(tv_video.mc3_18(num_classes=5), seed=4)
    x = clip(2, 3, 2, 16, 16)
    expected = logits(model, x)
    models.add_attention(model, attention, identity_init=True)
    torch.testing.assert_close(logits(model, x), expected, rtol=0, atol=0)
    model.train()(x).sum().backward()
    scales = [m.scale for m in model.modules() if isinstance(m, IdentityInitAttention)]
    assert scales and all(s.grad is not None and s.grad.abs() > 0 for s in scales)


def test_plain_retrofit_changes_the_function(randomize):
    """Without identity_init the new gates act in the forward pass (outputs change)."""
    model = randomize(tv_video.r3d_18(num_classes=5), seed=6)
    x = clip(1, 3, 2, 16, 16)
    before = logits(model, x)
    models.add_attention(model, "cbam")
    assert not torch.allclose(logits(model, x), before)


def create_tiny_pytorchvideo_resnet() -> nn.Module:
    from pytorchvideo.models.resnet import create_resnet

    return create_resnet(model_depth=50, model_num_class=4, stem_dim_out=16, head_pool_kernel_size=(2, 1, 1))


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")
@pytest.mark.parametrize("attention, count", [("cbam", 16), ("bam", 3)])
def test_retrofit_pytorchvideo_create_resnet(attention, count, randomize):
    """pytorchvideo's ResBlocks get one module each (BAM: after stages 1-3); identity_init keeps outputs,
    and the modules then act in the forward pass."""
    model = randomize(create_tiny_pytorchvideo_resnet(), seed=7)
    x = clip(1, 3, 2, 32, 32)
    expected = logits(model, x)
    models.add_attention(model, attention, identity_init=True)
    added = [m for m in model.modules() if isinstance(m, IdentityInitAttention)]
    assert len(added) == count
    assert all(isinstance(m.attention, CBAM if attention == "cbam" else BAM) for m in added)
    torch.testing.assert_close(logits(model, x), expected, rtol=0, atol=0)
    with torch.no_grad():
        for m in added:
            m.scale.fill_(1.0)
    assert not torch.allclose(logits(model, x), expected)


def test_retrofit_of_our_network_equals_building_it_with_attention(randomize):
    plain = models.resnet3d(10, widen_factor=0.25)
    models.add_attention(plain, "cbam")
    built = models.resnet3d(10, attention="cbam", widen_factor=0.25)
    assert {k: v.shape for k, v in plain.state_dict().items()} == {k: v.shape for k, v in built.state_dict().items()}
    built.load_state_dict(randomize(plain).state_dict())
    x = clip(1, 3, 2, 16, 16)
    torch.testing.assert_close(logits(built, x), logits(plain, x))


def test_deepcopy_of_a_retrofitted_model_uses_its_own_attention(randomize):
    model = randomize(models.add_attention(tv_video.mc3_18(num_classes=5), "cbam"), seed=8)
    twin = copy.deepcopy(model)
    x = clip(1, 3, 2, 16, 16)
    torch.testing.assert_close(logits(twin, x), logits(model, x))
    with torch.no_grad():
        twin.layer1[0].attention.channel_gate.mlp[2].bias.add_(5.0)
    assert not torch.allclose(logits(twin, x), logits(model, x))


def test_retrofit_rejects_stacking_and_networks_without_residual_blocks():
    model = models.add_attention(tv_video.r3d_18(), "se")
    with pytest.raises(ValueError, match="already has attention"):
        models.add_attention(model, "cbam")
    with pytest.raises(ValueError, match="no residual addition.*at="):
        models.add_attention(nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8)), "cbam")
    with pytest.raises(ValueError, match="unknown attention"):
        models.add_attention(tv_video.r3d_18(), "gcnet")
    with pytest.raises(ValueError, match="needs an attention"):
        models.add_attention(tv_video.r3d_18(), None)
