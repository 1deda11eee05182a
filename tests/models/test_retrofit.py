"""add_attention on any network: in the residual blocks of torchvision's, pytorchvideo's and this package's
ResNets (the same networks as building them with attention), at places found by torch.fx (``at="auto"``) in MONAI's
volumetric networks and X3D, at named places (``at=``); identity_init, the refusals, copies and exports."""

from __future__ import annotations

import copy
import pickle
from collections.abc import Callable

import pytest
import torch
from torch import nn
from torchvision.models import resnet18 as tv_resnet18
from torchvision.models import video as tv_video

from cbam3d import BAM, CBAM, models
from cbam3d.models.retrofit import AttentionAfter, IdentityInitAttention

VOLUME = (1, 1, 16, 16, 16)


def logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(x)


def places(model: nn.Module) -> list[str]:
    """``"<hooked module> -> <attention attribute>"`` for every attention add_attention hooked on."""
    return [
        f"{name} -> {hook.name}"
        for name, module in model.named_modules()
        for hook in module._forward_hooks.values()
        if isinstance(hook, AttentionAfter)
    ]


def pytorchvideo_resnet() -> nn.Module:
    """A small pytorchvideo ``create_resnet`` (ResNet-50 layout, 16 stem channels, 4 classes)."""
    from pytorchvideo.models.resnet import create_resnet

    return create_resnet(model_depth=50, model_num_class=4, stem_dim_out=16, head_pool_kernel_size=(2, 1, 1))


def monai_nets():
    return pytest.importorskip("monai.networks.nets")


def monai_resnet18() -> nn.Module:
    return monai_nets().resnet18(spatial_dims=3, n_input_channels=1, num_classes=2)


def segresnet() -> nn.Module:
    return monai_nets().SegResNet(spatial_dims=3, init_filters=8, in_channels=1, out_channels=2)


def residual_unet() -> nn.Module:
    return monai_nets().UNet(
        spatial_dims=3, in_channels=1, out_channels=2, channels=(8, 16, 32), strides=(2, 2), num_res_units=2
    )


def basic_unet() -> nn.Module:
    return monai_nets().BasicUNet(spatial_dims=3, in_channels=1, out_channels=2, features=(4, 4, 8, 8, 16, 4))


# --- residual networks: the same as building them with attention --------------------------------------------
@pytest.mark.parametrize("attention", ["cbam", "bam"])
def test_retrofitted_torchvision_video_resnet_equals_our_model_with_attention(attention, randomize, random_tensor):
    """Retrofitting tv r3d_18 puts attention where r3d_18(attention=...) has it: the state_dicts
    correspond key for key through from_torchvision and the logits agree."""
    retrofitted = models.add_attention(tv_video.r3d_18(num_classes=5), attention)
    randomize(retrofitted, seed=1)
    ours = models.r3d_18(num_classes=5, attention=attention)
    ours.load_state_dict(models.from_torchvision(retrofitted.state_dict()), strict=True)
    x = random_tensor(1, 3, 2, 16, 16)
    torch.testing.assert_close(logits(ours, x), logits(retrofitted, x))


def test_retrofitted_torchvision_2d_resnet_equals_resnet2d_with_cbam(randomize, random_tensor):
    """torchvision's 2D resnet18 shares the official names: its retrofit loads into resnet2d(18, attention="cbam")."""
    retrofitted = randomize(models.add_attention(tv_resnet18(num_classes=5), "cbam"), seed=2)
    ours = models.resnet2d(18, attention="cbam", num_classes=5)
    ours.load_state_dict(retrofitted.state_dict(), strict=True)
    x = random_tensor(1, 3, 32, 32)
    torch.testing.assert_close(logits(ours, x), logits(retrofitted, x))


def test_retrofit_of_our_network_equals_building_it_with_attention(randomize, random_tensor):
    plain = models.resnet3d(10, widen_factor=0.25)
    models.add_attention(plain, "cbam")
    built = models.resnet3d(10, attention="cbam", widen_factor=0.25)
    assert {k: v.shape for k, v in plain.state_dict().items()} == {k: v.shape for k, v in built.state_dict().items()}
    built.load_state_dict(randomize(plain).state_dict())
    x = random_tensor(1, 3, 2, 16, 16)
    torch.testing.assert_close(logits(built, x), logits(plain, x))


def test_our_networks_use_their_own_slots_not_hooks():
    """This package's ResNets keep their attention slots: every block's ``attention`` and ``bam1``..``bam3``."""
    cbam = models.add_attention(models.resnet3d(10, widen_factor=0.25), "cbam")
    assert not places(cbam) and all(isinstance(b.attention, CBAM) for b in cbam.modules() if hasattr(b, "chain"))
    bam = models.add_attention(models.r2plus1d(10, widen_factor=0.25), "bam")
    assert not places(bam) and all(getattr(bam, f"bam{i}") is not None for i in (1, 2, 3))


@pytest.mark.parametrize("make", [tv_video.r2plus1d_18, tv_video.mc3_18], ids=["r2plus1d_18", "mc3_18"])
def test_block_attention_on_torchvision_video_resnets_follows_each_block_last_norm(make):
    """One module per block, after the BatchNorm that ends the branch (``conv2.1`` in torchvision's video blocks)."""
    model = models.add_attention(make(num_classes=3), "cbam")
    expected = [f"layer{s}.{b}.conv2.1 -> attention" for s in (1, 2, 3, 4) for b in (0, 1)]
    assert places(model) == expected


def test_bam_on_torchvision_resnet_hooks_the_outputs_of_layer1_to_layer3():
    """Stage attention goes on the feature maps entering stages 2-4, i.e. after layer1..layer3."""
    model = models.add_attention(tv_resnet18(num_classes=3), "bam")
    assert places(model) == ["layer1 -> bam1", "layer2 -> bam2", "layer3 -> bam3"]
    assert [model.bam1.channels, model.bam2.channels, model.bam3.channels] == [64, 128, 256]


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")
def test_bam_on_pytorchvideo_resnet_follows_its_first_three_res_stages():
    """pytorchvideo's create_resnet: BAM on the outputs of blocks.1..3 (ResStage 1-3)."""
    model = pytorchvideo_resnet()
    models.add_attention(model, "bam")
    assert places(model) == ["blocks.1 -> bam1", "blocks.2 -> bam2", "blocks.3 -> bam3"]
    assert [type(model.get_submodule(f"blocks.{i}")).__name__ for i in (1, 2, 3)] == ["ResStage"] * 3


def test_retrofit_leaves_existing_weights_and_names_untouched():
    model = tv_video.mc3_18()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    models.add_attention(model, "se")
    after = model.state_dict()
    assert all(torch.equal(after[k], v) for k, v in before.items())
    assert set(after) - set(before) == {k for k in after if ".attention." in k}


# --- identity_init ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("attention", ["cbam", "se", "bam"])
def test_identity_init_keeps_the_pretrained_function_and_can_learn(attention, randomize, random_tensor):
    """With identity_init the retrofitted model first computes exactly what the original did, and the
    blend scales receive gradients, so training can turn the attention on."""
    model = randomize(tv_video.mc3_18(num_classes=5), seed=4)
    x = random_tensor(2, 3, 2, 16, 16)
    expected = logits(model, x)
    models.add_attention(model, attention, identity_init=True)
    torch.testing.assert_close(logits(model, x), expected, rtol=0, atol=0)
    model.train()(x).sum().backward()
    scales = [m.scale for m in model.modules() if isinstance(m, IdentityInitAttention)]
    assert scales and all(s.grad is not None and s.grad.abs() > 0 for s in scales)


def test_plain_retrofit_changes_the_function(randomize, random_tensor):
    """Without identity_init the new gates act in the forward pass (outputs change)."""
    model = randomize(tv_video.r3d_18(num_classes=5), seed=6)
    x = random_tensor(1, 3, 2, 16, 16)
    before = logits(model, x)
    models.add_attention(model, "cbam")
    assert not torch.allclose(logits(model, x), before)


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")
@pytest.mark.parametrize("attention, count", [("cbam", 16), ("bam", 3)])
def test_pytorchvideo_resnet_gets_a_module_per_res_block_and_identity_init_keeps_its_outputs(
    attention, count, randomize, random_tensor
):
    """pytorchvideo's ResBlocks get one module each (BAM: after stages 1-3); identity_init keeps outputs,
    and the modules then act in the forward pass."""
    model = randomize(pytorchvideo_resnet(), seed=7)
    x = random_tensor(1, 3, 2, 32, 32)
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


# --- at="auto": places found by torch.fx -------------------------------------------------------------------
AUTO_CASES: dict[str, tuple[Callable[[], nn.Module], str, int, str]] = {
    # name: (network, attention, modules placed, a place that must be among them)
    "monai-resnet18-cbam": (monai_resnet18, "cbam", 8, "layer2.0.bn2 -> attention"),
    "monai-resnet18-bam": (monai_resnet18, "bam", 3, "layer3 -> bam3"),
    "segresnet-cbam": (segresnet, "cbam", 12, "up_layers.2.0.norm2 -> attention"),
    "unet-cbam": (residual_unet, "cbam", 4, "model.1.submodule.1.submodule.conv.unit1.adn.N -> attention"),
    "unet-eca": (residual_unet, "eca", 4, "model.0.conv.unit1.adn.N -> attention"),
    "segresnet-se": (segresnet, "se", 12, "down_layers.0.1.norm2 -> attention"),
}


@pytest.mark.parametrize("case", list(AUTO_CASES))
def test_auto_places_attention_in_monai_networks_and_identity_init_keeps_outputs(case, randomize, random_tensor):
    """at="auto" places one module per residual addition (after the branch's last norm) or BAM before
    the first three downsampling stages; with identity_init the outputs are exactly the original's."""
    make, attention, count, expected_place = AUTO_CASES[case]
    model = randomize(make(), seed=1).eval()
    x = random_tensor(*VOLUME)
    with torch.no_grad():
        before = model(x)
    models.add_attention(model, attention, identity_init=True)
    assert len(places(model)) == count and expected_place in places(model)
    with torch.no_grad():
        torch.testing.assert_close(model(x), before, rtol=0, atol=0)


def test_monai_resnet18_keeps_parameter_names_and_loads_a_pretrained_state_dict():
    """Existing names are unchanged: the original's state_dict loads with only the attention keys missing."""
    pretrained = monai_resnet18().state_dict()
    model = models.add_attention(monai_resnet18(), "cbam")
    missing, unexpected = model.load_state_dict(pretrained, strict=False)
    assert not unexpected and missing and all(".attention." in key for key in missing)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in pretrained.items())


def test_x3d_gets_cbam_beside_its_own_squeeze_excitation(random_tensor):
    """X3D keeps its SE (inside branch2 after norm_b); CBAM is added after each block's last norm (norm_c)."""
    from pytorchvideo.models.x3d import create_x3d

    model = create_x3d(input_clip_length=4, input_crop_size=32, model_num_class=3, depth_factor=0.5).eval()
    se_before = sum(type(m).__name__ == "SqueezeExcitation" for m in model.modules())
    models.add_attention(model, "cbam")
    assert len(places(model)) == 7 and all(p.endswith("branch2.norm_c -> attention") for p in places(model))
    assert sum(type(m).__name__ == "SqueezeExcitation" for m in model.modules()) == se_before > 0
    with torch.no_grad():
        assert model(random_tensor(1, 3, 4, 32, 32)).shape == (1, 3)


class _LayerNormBlock(nn.Module):
    """``x + norm(conv(x))`` on (N, 8, H, W), ``norm`` a channel LayerNorm or a plain (last-axis) one."""

    def __init__(self, norm: nn.Module) -> None:
        super().__init__()
        self.conv, self.norm = nn.Conv2d(8, 8, 3, padding=1), norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.norm(self.conv(x))


def test_auto_follows_a_channel_layer_norm_but_not_a_last_axis_layer_norm(random_tensor):
    """timm's LayerNorm2d normalizes the channels of (N, C, H, W): attention follows it, with C from its
    normalized_shape. A plain nn.LayerNorm normalizes the last axis, where a channel gate would not fit."""
    from timm.layers import LayerNorm2d

    model = nn.Sequential(nn.Conv2d(3, 8, 1), _LayerNormBlock(LayerNorm2d(8)), _LayerNormBlock(LayerNorm2d(8)))
    models.add_attention(model, "cbam")
    assert places(model) == ["1.norm -> attention", "2.norm -> attention"]
    assert model[1].attention.channels == 8
    assert model(random_tensor(2, 3, 6, 6)).shape == (2, 8, 6, 6)
    plain = nn.Sequential(nn.Conv2d(3, 8, 1), _LayerNormBlock(nn.LayerNorm(6)))
    with pytest.raises(ValueError, match="at="):
        models.add_attention(plain, "cbam")


# --- at=: named places and predicates ----------------------------------------------------------------------
def test_basic_unet_takes_attention_at_named_places_with_lazy_channels(random_tensor):
    """at= patterns over module names: one module on each matched output; channels come from the input."""
    model = models.add_attention(basic_unet(), "cbam", at=["down_*.convs.conv_1", "upcat_*.convs.conv_1"])
    assert len(places(model)) == 8 and "down_1.convs.conv_1 -> down_1_convs_conv_1_attention" in places(model)
    model.train()(random_tensor(2, 1, 32, 32, 32)).sum().backward()
    assert model.down_1_convs_conv_1_attention.channels == 4


def test_densenet121_takes_attention_through_a_predicate():
    """A predicate picks the places; channels come from each matched conv."""
    model = monai_nets().DenseNet121(spatial_dims=3, in_channels=1, out_channels=2)
    models.add_attention(model, "se", at=lambda name, module: name.endswith("transition3.conv"))
    assert places(model) == ["features.transition3.conv -> features_transition3_conv_attention"]
    assert model.features_transition3_conv_attention.channels == 512


# --- refusals -----------------------------------------------------------------------------------------------
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


def test_adding_twice_at_a_place_found_by_auto_is_refused():
    model = models.add_attention(residual_unet(), "cbam")
    with pytest.raises(ValueError, match="already has attention"):
        models.add_attention(model, "se")


def test_auto_without_residual_additions_and_unmatched_patterns_point_to_at():
    with pytest.raises(ValueError, match=r"no residual addition.*at=.*conv_0"):
        models.add_attention(basic_unet(), "cbam")
    with pytest.raises(ValueError, match=r"'encoder\.\*' matches no module; module names look like \['conv_0'"):
        models.add_attention(basic_unet(), "cbam", at=["encoder.*"])
    with pytest.raises(ValueError, match="at must be"):
        models.add_attention(basic_unet(), "cbam", at="conv_0")
    with pytest.raises(TypeError, match="at must be"):
        models.add_attention(basic_unet(), "cbam", at=5)


def test_untraceable_forward_error_says_why_and_points_to_at():
    class Branching(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv3d(1, 4, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.conv(x) if x.sum() > 0 else x

    with pytest.raises(ValueError, match=r"torch\.fx could not trace Branching.*at="):
        models.add_attention(Branching(), "cbam")


# --- copies and exports -------------------------------------------------------------------------------------
def test_deepcopy_of_a_retrofitted_model_uses_its_own_attention(randomize, random_tensor):
    model = randomize(models.add_attention(tv_video.mc3_18(num_classes=5), "cbam"), seed=8)
    twin = copy.deepcopy(model)
    x = random_tensor(1, 3, 2, 16, 16)
    torch.testing.assert_close(logits(twin, x), logits(model, x))
    with torch.no_grad():
        twin.layer1[0].attention.channel_gate.mlp[2].bias.add_(5.0)
    assert not torch.allclose(logits(twin, x), logits(model, x))


def test_retrofitted_monai_network_survives_deepcopy_and_pickle(randomize, random_tensor):
    """Copies compute the same and own their attention (changing the copy's gate leaves the original)."""
    model = randomize(models.add_attention(segresnet(), "cbam"), seed=3).eval()
    x = random_tensor(*VOLUME)
    with torch.no_grad():
        expected = model(x)
        twin = copy.deepcopy(model)
        thawed = pickle.loads(pickle.dumps(model))
        torch.testing.assert_close(twin(x), expected)
        torch.testing.assert_close(thawed(x), expected)
        twin.down_layers[0][1].attention.channel_gate.mlp[2].bias.add_(5.0)
        assert not torch.allclose(twin(x), expected)
        torch.testing.assert_close(model(x), expected)


def test_torch_export_of_a_retrofitted_network_matches_eager(randomize, random_tensor):
    model = randomize(models.add_attention(residual_unet(), "cbam"), seed=4).eval()
    x = random_tensor(*VOLUME)
    exported = torch.export.export(model, (x,))
    with torch.no_grad():
        torch.testing.assert_close(exported.module()(x), model(x))


class TinyResidual(nn.Module):
    """``relu(x + bn(conv(x)))`` on 4-channel volumes: the smallest network with one residual addition."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(4, 4, 3, padding=1)
        self.bn = nn.BatchNorm3d(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.bn(self.conv(x)))


def test_onnx_dynamo_export_of_a_retrofitted_network_matches_eager(randomize, random_tensor):
    """The hook and the attention export to ONNX (a tiny network: the exporter's time grows with the graph)."""
    onnxruntime = pytest.importorskip("onnxruntime")
    model = randomize(models.add_attention(TinyResidual(), "cbam"), seed=5).eval()
    assert places(model) == ["bn -> attention"]
    x = random_tensor(1, 4, 4, 8, 8)
    program = torch.onnx.export(model, (x,), dynamo=True)
    session = onnxruntime.InferenceSession(program.model_proto.SerializeToString())
    (out,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(out), model(x), rtol=1e-4, atol=1e-5)


# --- refusals and warnings of add_attention's at= and wrapped models --------------------------------------------
def test_an_empty_at_list_is_refused_as_matching_nothing():
    model = tv_resnet18(num_classes=3)
    with pytest.raises(ValueError, match=r"at= names no module \(an empty list\)"):
        models.add_attention(model, "se", at=[])
    assert not any(name.endswith("_attention") for name, _ in model.named_modules())


def test_patterns_that_nest_one_chosen_module_in_another_are_warned_about_by_name():
    with pytest.warns(UserWarning, match=r"several nesting levels of one path .*'layer1' and 'layer1\.0'"):
        models.add_attention(tv_resnet18(num_classes=3), "se", at=["layer1*"])


def test_a_pattern_of_one_nesting_level_places_attention_without_a_warning(recwarn):
    model = models.add_attention(tv_resnet18(num_classes=3), "se", at=["layer1.?"])
    assert not [w for w in recwarn if "nesting levels" in str(w.message)]
    assert sorted(name for name, _ in model.named_children() if name.endswith("_attention")) == [
        "layer1_0_attention",
        "layer1_1_attention",
    ]


@pytest.mark.parametrize("wrap", ["data_parallel", "compiled"])
def test_a_wrapped_model_is_refused_add_attention_before_wrapping(wrap):
    network = tv_resnet18(num_classes=3)
    wrapped = nn.DataParallel(network) if wrap == "data_parallel" else torch.compile(network)
    with pytest.raises(TypeError, match=r"add attention before wrapping it"):
        models.add_attention(wrapped, "cbam")
    assert not any("attention" in name for name, _ in network.named_modules())


def test_a_distributed_data_parallel_model_is_refused_add_attention_before_wrapping(tmp_path):
    """DDP's reducer knows only the parameters present when it was built: new attention would train apart on
    each rank. Checked with a gloo process group of one process on the CPU."""
    torch.distributed.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        wrapped = nn.parallel.DistributedDataParallel(tv_resnet18(num_classes=3))
        with pytest.raises(
            TypeError, match=r"got a DistributedDataParallel, .*\(model\.module\): add attention before"
        ):
            models.add_attention(wrapped, "se")
        models.add_attention(wrapped.module, "se")  # the plain network takes it, to be wrapped again
    finally:
        torch.distributed.destroy_process_group()
