"""Video ResNets: torchvision equivalence, the 3D-ResNet family's depths and options, attention placement."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torchvision.models import resnet18 as tv_resnet18
from torchvision.models import video as tv_video

from cbam3d import BAM, CBAM, SE, models
from cbam3d.models.blocks import Bottleneck, ZeroPadShortcut
from cbam3d.models.convs import factorised_width

TV_NAMES = ("r3d_18", "mc3_18", "r2plus1d_18")


@pytest.mark.parametrize("name", TV_NAMES)
def test_torchvision_weights_load_strictly_and_give_identical_logits(name, randomize, random_tensor):
    """from_torchvision(tv.state_dict()) loads strictly and reproduces torchvision's logits."""
    reference = randomize(getattr(tv_video, name)(num_classes=7), seed=3).eval()
    ours = getattr(models, name)(num_classes=7).eval()
    ours.load_state_dict(models.from_torchvision(reference.state_dict()), strict=True)
    x = random_tensor(2, 3, 2, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), reference(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", TV_NAMES)
def test_to_torchvision_is_the_exact_inverse_of_from_torchvision(name):
    state = getattr(tv_video, name)().state_dict()
    back = models.to_torchvision(models.from_torchvision(state))
    assert list(back) == list(state)
    assert all(back[k] is state[k] for k in state)


@pytest.mark.parametrize("name", TV_NAMES)
@pytest.mark.parametrize("attention", ["cbam", "se", "bam"])
def test_torchvision_weights_leave_only_attention_parameters_new(name, attention):
    """With attention, torchvision's weights load and only the attention parameters are missing."""
    with torch.device("meta"):
        state = getattr(tv_video, name)().state_dict()
        ours = getattr(models, name)(attention=attention)
    result = ours.load_state_dict(models.from_torchvision(state), strict=False, assign=True)
    assert result.unexpected_keys == []
    assert result.missing_keys and all(".attention." in k or k.startswith("bam") for k in result.missing_keys)


def test_from_torchvision_rejects_other_architectures():
    """A 2D ResNet's state_dict, or one already in our names, is not a torchvision video ResNet's."""
    with pytest.raises(ValueError, match="stem.0.weight"):
        models.from_torchvision(tv_resnet18().state_dict())
    with pytest.raises(ValueError, match="torchvision video ResNet"):
        models.from_torchvision(models.r3d_18().state_dict())
    state = tv_video.r3d_18().state_dict()
    state["layer1.0.extra.weight"] = torch.zeros(1)
    with pytest.raises(ValueError, match="layer1.0.extra.weight"):
        models.from_torchvision(state)
    with pytest.raises(TypeError, match="state_dict"):
        models.from_torchvision([("stem.0.weight", torch.zeros(1))])


def test_resnet3d_with_torchvision_stem_is_r3d_18(randomize, random_tensor):
    """resnet3d(18) with a 3x7x7 stem and no max pool is exactly torchvision's r3d_18 (same tensors, same logits)."""
    reference = randomize(models.r3d_18(), seed=5).eval()
    family = models.resnet3d(18, conv1_t_size=3, no_max_pool=True).eval()
    family.load_state_dict(reference.state_dict(), strict=True)
    x = random_tensor(1, 3, 2, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(family(x), reference(x))


@pytest.mark.parametrize("builder", [models.resnet3d, models.r2plus1d])
@pytest.mark.parametrize("depth", [10, 50])
def test_basic_and_bottleneck_depths_classify_a_tiny_clip(builder, depth, random_tensor):
    model = builder(depth, num_classes=5, widen_factor=0.25).eval()
    with torch.no_grad():
        out = model(random_tensor(1, 3, 4, 32, 32))
    assert out.shape == (1, 5) and torch.isfinite(out).all()


@pytest.mark.parametrize(
    "depth, counts, block",
    [(10, [1, 1, 1, 1], "BasicBlock"), (18, [2, 2, 2, 2], "BasicBlock"), (34, [3, 4, 6, 3], "BasicBlock"),
     (50, [3, 4, 6, 3], "Bottleneck"), (101, [3, 4, 23, 3], "Bottleneck"),
     (152, [3, 8, 36, 3], "Bottleneck"), (200, [3, 24, 36, 3], "Bottleneck")],
)  # fmt: skip
def test_depths_use_the_reference_block_types_and_counts(depth, counts, block):
    with torch.device("meta"):
        model = models.resnet3d(depth)
    layers = [model.layer1, model.layer2, model.layer3, model.layer4]
    assert [len(layer) for layer in layers] == counts
    assert {type(b).__name__ for layer in layers for b in layer} == {block}
    assert model.fc.in_features == 512 * (4 if block == "Bottleneck" else 1)


def test_2plus1d_mid_widths_follow_kenshohara_and_torchvision():
    """(2+1)D mid widths match the full conv's parameter count per conv (kenshohara) or per block (torchvision)."""
    with torch.device("meta"):
        family, tv_like = models.r2plus1d(18), models.r2plus1d_18()
    assert family.conv1_s.out_channels == factorised_width(3, 64, 7, 7) == 110
    assert tv_like.conv1_s.out_channels == 45
    block, tv_block = family.layer2[0], tv_like.layer2[0]
    assert (block.conv1_s.out_channels, block.conv2_s.out_channels) == (230, 288)
    assert (tv_block.conv1_s.out_channels, tv_block.conv2_s.out_channels) == (230, 230)


def test_any_clip_length_and_frame_size_work(random_tensor):
    model = models.r2plus1d(10, num_classes=3, widen_factor=0.25).eval()
    with torch.no_grad():
        for shape in [(1, 3, 1, 24, 40), (1, 3, 7, 33, 33)]:
            assert model(random_tensor(*shape)).shape == (1, 3)


def test_stem_options_change_the_stem_as_documented(random_tensor):
    model = models.resnet3d(
        10, conv1_t_size=3, conv1_t_stride=2, no_max_pool=True, widen_factor=0.5, n_input_channels=1
    )
    assert model.conv1.kernel_size == (3, 7, 7) and model.conv1.stride == (2, 2, 2) and model.conv1.in_channels == 1
    assert model.maxpool is None
    assert model.fc.in_features == 256 and model.layer1[0].conv1.out_channels == 32
    assert model.eval()(random_tensor(1, 1, 4, 32, 32)).shape == (1, 400)


def test_shortcut_a_is_parameter_free_and_zero_pads_channels(random_tensor):
    model_a, model_b = models.resnet3d(18, shortcut_type="A"), models.resnet3d(18, shortcut_type="B")
    assert isinstance(model_a.layer2[0].downsample, ZeroPadShortcut)
    assert not any("downsample" in name for name, _ in model_a.named_parameters())
    assert models.count_parameters(model_b) - models.count_parameters(model_a) == sum(
        p.numel() for n, p in model_b.named_parameters() if "downsample" in n
    )
    x = random_tensor(1, 64, 4, 8, 8)
    out = model_a.layer2[0].downsample(x)
    assert out.shape == (1, 128, 2, 4, 4)
    torch.testing.assert_close(out[:, :64], x[:, :, ::2, ::2, ::2])
    assert torch.all(out[:, 64:] == 0)


def test_video_models_reject_non_5d_input_with_the_expected_layout():
    model = models.r3d_18()
    with pytest.raises(ValueError, match=r"5-D input \(N, C, T, H, W\)"):
        model(torch.randn(1, 3, 32, 32))
    with pytest.raises(ValueError, match="expects 3 input channels"):
        model(torch.randn(1, 1, 2, 16, 16))


@pytest.mark.parametrize("bad, error", [(11, ValueError), ("18", TypeError), (True, TypeError)])
def test_unknown_depth_is_rejected(bad, error):
    with pytest.raises(error, match="depth"):
        models.resnet3d(bad)


def test_unknown_attention_is_rejected_listing_the_valid_names():
    with pytest.raises(ValueError, match=r"'bam', 'cbam', 'eca', 'se'"):
        models.resnet3d(18, attention="gcnet")
    with pytest.raises(ValueError, match="attention is None"):
        models.r3d_18(attention_kwargs={"reduction": 8})
    with pytest.raises(TypeError, match="attention"):
        models.r3d_18(attention=3)


@pytest.mark.parametrize("builder", [lambda **kw: models.resnet3d(50, **kw), lambda **kw: models.r2plus1d_18(**kw)])
def test_cbam_and_se_sit_in_every_block_and_bam_after_stages_1_to_3(builder):
    with torch.device("meta"):
        for name, kind in (("cbam", CBAM), ("se", SE)):
            model = builder(attention=name)
            blocks = [b for layer in (model.layer1, model.layer2, model.layer3, model.layer4) for b in layer]
            out_channels = [getattr(b, b.chain[-1][1]).num_features for b in blocks]  # the branch's last BN
            assert all(isinstance(b.attention, kind) for b in blocks)
            assert [b.attention.channels for b in blocks] == out_channels
            assert (model.bam1, model.bam2, model.bam3) == (None, None, None)
        model = builder(attention="bam")
        expansion = 4 if isinstance(model.layer1[0], Bottleneck) else 1
        assert [getattr(model, f"bam{i}").channels for i in (1, 2, 3)] == [
            64 * expansion,
            128 * expansion,
            256 * expansion,
        ]
        assert isinstance(model.bam1, BAM) and all(b.attention is None for b in model.layer1)


def test_attention_kwargs_reach_the_attention_modules():
    model = models.resnet3d(10, attention="cbam", attention_kwargs={"kernel_size": (1, 5, 5), "reduction": 8})
    gate = model.layer2[0].attention
    assert gate.spatial_gate.kernel_size == (1, 5, 5)
    assert gate.channel_gate.mlp[0].out_features == 128 // 8


class Zero(nn.Module):
    def forward(self, x):
        return torch.zeros_like(x)


def test_block_attention_acts_on_the_branch_before_the_residual_add(random_tensor):
    """An attention that zeroes its input leaves relu(shortcut(x)): it sits on the branch, before the add."""
    model = models.resnet3d(10, attention=lambda channels, dims: Zero(), widen_factor=0.25).eval()
    for block in (model.layer1[0], model.layer2[0]):
        x = random_tensor(1, block.conv1.in_channels, 4, 8, 8)
        shortcut = x if block.downsample is None else block.downsample(x)
        with torch.no_grad():
            torch.testing.assert_close(block(x), torch.relu(shortcut))


@pytest.mark.parametrize(
    "options, message",
    [
        ({"conv1_t_stride": 0}, "conv1_t_stride must be a positive integer"),
        ({"conv1_t_size": 2.5}, "conv1_t_size must be a positive integer"),
        ({"n_input_channels": 0}, "n_input_channels must be a positive integer"),
        ({"widen_factor": float("inf")}, "widen_factor must be a positive finite number"),
        ({"widen_factor": "wide"}, "widen_factor must be a positive finite number"),
        ({"no_max_pool": "false"}, "no_max_pool must be True or False, got 'false'"),
    ],
)
@pytest.mark.parametrize("family", ["resnet3d-10", "r2plus1d-10"])
def test_option_values_the_layers_cannot_take_are_refused_naming_the_option(family, options, message):
    with pytest.raises((TypeError, ValueError), match=message):
        models.create_model(family, num_classes=2, **options)
