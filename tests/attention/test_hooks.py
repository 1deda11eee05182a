"""Attention maps: the map hooks of the modules (``register_map_hook``) and cbam3d.attention.hooks.capture_attention
built on them: which maps are recorded and their shapes, that they are the factors the gates multiply by, that the
model computes exactly the same with and without the capture, and that its hooks go away."""

from collections import OrderedDict

import pytest
import torch
from torch import nn

from cbam3d import BAM, CBAM, SE, AttentionModule, models
from cbam3d.attention.hooks import KINDS, AttentionMaps, capture_attention

N, C, T, H, W = 2, 8, 4, 6, 7


def _net(attention: nn.Module, dims: int = 3) -> nn.Module:
    conv = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[dims]
    return nn.Sequential(OrderedDict(stem=conv(3, C, 3, padding=1), attention=attention))


def _clip(*spatial: int) -> torch.Tensor:
    return torch.randn(N, 3, *spatial)


def _shapes(maps: AttentionMaps) -> dict[str, dict[str, tuple[int, ...]]]:
    return {path: {kind: tuple(m.shape) for kind, m in by_kind.items()} for path, by_kind in maps.items()}


@pytest.mark.parametrize("dims, spatial", [(1, (W,)), (2, (H, W))])
def test_cbam_in_1d_and_2d_gives_channel_weights_and_a_spatial_map_but_no_temporal_profile(dims, spatial):
    model = _net(CBAM(C, dims=dims, reduction=2), dims)
    with capture_attention(model) as maps:
        model(_clip(*spatial))
    assert _shapes(maps) == {
        "attention.channel_gate": {"channel": (N, C, *(1,) * dims)},
        "attention.spatial_gate": {"spatial": (N, 1, *spatial)},
    }


@pytest.mark.parametrize("mode", ["joint", "framewise"])
def test_3d_cbam_gives_a_spatio_temporal_map_and_its_mean_over_h_w_as_the_temporal_profile(mode):
    model = _net(CBAM(C, dims=3, reduction=2, spatial_mode=mode))
    with capture_attention(model) as maps:
        model(_clip(T, H, W))
    assert _shapes(maps) == {
        "attention.channel_gate": {"channel": (N, C, 1, 1, 1)},
        "attention.spatial_gate": {"spatial": (N, 1, T, H, W), "temporal": (N, 1, T, 1, 1)},
    }
    spatial_gate = maps["attention.spatial_gate"]
    torch.testing.assert_close(spatial_gate["temporal"], spatial_gate["spatial"].mean(dim=(3, 4), keepdim=True))


def test_factorized_cbam_gives_the_temporal_gates_profile_and_the_framewise_map():
    model = _net(CBAM(C, dims=3, reduction=2, spatial_mode="factorized"))
    with capture_attention(model) as maps:
        model(_clip(T, H, W))
    assert _shapes(maps) == {
        "attention.channel_gate": {"channel": (N, C, 1, 1, 1)},
        "attention.spatial_gate.temporal": {"temporal": (N, 1, T, 1, 1)},
        "attention.spatial_gate.spatial": {"spatial": (N, 1, T, H, W)},
    }


def test_bam_gives_both_branches_and_the_combined_factor():
    model = _net(BAM(C, dims=3, reduction=2, dilation=1))
    with capture_attention(model) as maps:
        model(_clip(T, H, W))
    assert _shapes(maps) == {
        "attention.channel_gate": {"channel": (N, C, 1, 1, 1)},
        "attention.spatial_gate": {"spatial": (N, 1, T, H, W), "temporal": (N, 1, T, 1, 1)},
        "attention": {"combined": (N, C, T, H, W)},
    }
    for kind in ("channel", "spatial"):  # sigmoid(Mc), sigmoid(Ms)
        branch = maps.of_kind(kind)[f"attention.{kind}_gate"]
        assert branch.min() > 0 and branch.max() < 1
    combined = maps["attention"]["combined"]
    assert combined.min() > 1 and combined.max() < 2


def test_se_gives_channel_weights_only():
    model = _net(SE(C, dims=3, reduction=2))
    with capture_attention(model) as maps:
        model(_clip(T, H, W))
    assert _shapes(maps) == {"attention": {"channel": (N, C, 1, 1, 1)}}


def test_an_attention_module_of_a_users_class_is_classified_by_the_shape_of_its_map():
    class MeanGate(AttentionModule):
        def forward(self, x):
            weights = torch.sigmoid(x.mean(dim=1, keepdim=True))
            self.report_map(weights)
            return x * weights

    model = _net(MeanGate(dims=3))
    with capture_attention(model) as maps:
        model(_clip(T, H, W))
    assert _shapes(maps) == {"attention": {"spatial": (N, 1, T, H, W), "temporal": (N, 1, T, 1, 1)}}


def test_cbam_map_hooks_report_the_channel_and_spatial_maps_the_output_is_made_of():
    cbam = CBAM(16, dims=3).eval()
    x = torch.randn(2, 16, 3, 5, 6)
    seen = {}
    cbam.channel_gate.register_map_hook(lambda m, a: seen.__setitem__("channel", a))
    cbam.spatial_gate.register_map_hook(lambda m, a: seen.__setitem__("spatial", a))
    out = cbam(x)
    channel = cbam.channel_gate.attention(x)
    spatial = cbam.spatial_gate.attention(x * channel)
    torch.testing.assert_close(seen["channel"], channel)
    torch.testing.assert_close(seen["spatial"], spatial)
    torch.testing.assert_close(out, x * channel * spatial)


@pytest.mark.parametrize(
    "make", [lambda: SE(16, dims=3, reduction=4), lambda: BAM(16, dims=3, reduction=4, dilation=1)], ids=["se", "bam"]
)
def test_se_and_bam_map_hooks_report_once_per_call_the_factor_the_output_is_made_of(make):
    module = make().eval()
    x = torch.randn(2, 16, 3, 5, 6)
    seen = []
    module.register_map_hook(lambda m, a: seen.append(a))
    out = module(x)
    assert len(seen) == 1
    torch.testing.assert_close(out, x * seen[0])


def _features_and_output(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    features = model.stem(x)
    return features, model.attention(features)


@pytest.mark.parametrize("mode", ["joint", "factorized"])
def test_captured_cbam_maps_are_the_factors_the_block_multiplies_by(mode):
    model = _net(CBAM(C, dims=3, reduction=2, spatial_mode=mode)).eval()
    x = _clip(T, H, W)
    with capture_attention(model) as maps:
        features, output = _features_and_output(model, x)
    channel = maps["attention.channel_gate"]["channel"]
    if mode == "joint":
        expected = features * channel * maps["attention.spatial_gate"]["spatial"]
    else:
        temporal = maps["attention.spatial_gate.temporal"]["temporal"]
        expected = features * channel * temporal * maps["attention.spatial_gate.spatial"]["spatial"]
    torch.testing.assert_close(output, expected)  # the block may fuse the products in another order


@pytest.mark.parametrize(
    "make", [lambda: BAM(C, dims=3, reduction=2, dilation=1), lambda: SE(C, dims=3, reduction=2)], ids=["bam", "se"]
)
def test_captured_bam_and_se_factors_are_what_the_module_multiplies_by(make):
    model = _net(make()).eval()
    with capture_attention(model, ("combined", "channel")) as maps:
        features, output = _features_and_output(model, _clip(T, H, W))
    factor = maps["attention"]["combined" if isinstance(model.attention, BAM) else "channel"]
    torch.testing.assert_close(output, features * factor)


ATTENTIONS = {
    "cbam-joint": lambda: CBAM(C, dims=3, reduction=2),
    "cbam-factorized": lambda: CBAM(C, dims=3, reduction=2, spatial_mode="factorized"),
    "cbam-parallel": lambda: CBAM(C, dims=3, reduction=2, spatial_mode="factorized", gate_order="parallel"),
    "bam": lambda: BAM(C, dims=3, reduction=2, dilation=1),
    "se": lambda: SE(C, dims=3, reduction=2),
}


@pytest.mark.parametrize("name", list(ATTENTIONS))
def test_outputs_and_gradients_are_bitwise_the_same_with_the_capture_on(name):
    torch.manual_seed(0)
    model = _net(ATTENTIONS[name]()).train()
    x = _clip(T, H, W).requires_grad_()

    def run():
        output = model(x)
        gradients = torch.autograd.grad(output.square().sum(), [x, *model.parameters()])
        return output.detach(), gradients

    plain_output, plain_gradients = run()
    with capture_attention(model) as maps:
        captured_output, captured_gradients = run()
    assert maps
    assert torch.equal(plain_output, captured_output)
    assert all(torch.equal(a, b) for a, b in zip(plain_gradients, captured_gradients))


def test_maps_are_detached_copies_on_the_requested_device():
    model = _net(CBAM(C, dims=3, reduction=2))
    with capture_attention(model, device="cpu") as maps:
        model(_clip(T, H, W).requires_grad_())
    for by_kind in maps.values():
        for attention_map in by_kind.values():
            assert attention_map.device == torch.device("cpu")
            assert not attention_map.requires_grad and attention_map.grad_fn is None


def test_the_kind_filter_records_only_the_kinds_asked_for():
    model = _net(CBAM(C, dims=3, reduction=2))
    x = _clip(T, H, W)
    with capture_attention(model, "channel") as channel_only:
        model(x)
    with capture_attention(model, ["temporal"]) as temporal_only:
        model(x)
    assert _shapes(channel_only) == {"attention.channel_gate": {"channel": (N, C, 1, 1, 1)}}
    assert _shapes(temporal_only) == {"attention.spatial_gate": {"temporal": (N, 1, T, 1, 1)}}
    assert list(channel_only.of_kind("channel")) == ["attention.channel_gate"]


@pytest.mark.parametrize("kinds, message", [("weights", "unknown kind"), ((), "kinds is empty")])
def test_a_bad_kind_is_a_value_error_naming_the_choices(kinds, message):
    with pytest.raises(ValueError, match=message) as error:
        capture_attention(_net(CBAM(C, dims=3)), kinds)
    assert str(KINDS) in str(error.value)


def test_a_model_without_attention_or_a_non_module_is_refused_clearly():
    with pytest.raises(ValueError, match="contains no cbam3d attention module"):
        capture_attention(nn.Conv3d(3, 3, 1))
    with pytest.raises(TypeError, match="expects an nn.Module, got function"):
        capture_attention(lambda x: x)


def test_hooks_are_removed_after_the_block_even_when_it_raises():
    model = _net(CBAM(C, dims=3, reduction=2))
    x = _clip(T, H, W)
    with capture_attention(model) as maps:
        model(x)
    maps.clear()
    model(x)
    assert not maps
    with pytest.raises(RuntimeError, match="inside the block"), capture_attention(model) as failed:
        raise RuntimeError("inside the block")
    model(x)
    assert not failed


def test_remove_stops_a_capture_made_without_a_with_block():
    model = _net(CBAM(C, dims=3, reduction=2))
    capture = capture_attention(model, "spatial")
    model(_clip(T, H, W))
    capture.remove()
    recorded = _shapes(capture.maps)
    model(torch.randn(1, 3, T, H, W))
    assert recorded == _shapes(capture.maps) == {"attention.spatial_gate": {"spatial": (N, 1, T, H, W)}}


def test_a_second_forward_pass_replaces_the_maps_of_the_first():
    model = _net(CBAM(C, dims=3, reduction=2))
    with capture_attention(model, "spatial") as maps:
        model(_clip(T, H, W))
        model(torch.randn(1, 3, 2, 5, 5))
    assert _shapes(maps) == {"attention.spatial_gate": {"spatial": (1, 1, 2, 5, 5)}}


def test_retrofitted_torchvision_r3d_18_gives_every_blocks_maps_at_its_stage_resolution():
    torchvision_video = pytest.importorskip("torchvision.models.video")
    model = models.add_attention(torchvision_video.r3d_18(num_classes=5), "cbam").eval()
    x = torch.randn(1, 3, 4, 16, 16)
    with torch.no_grad():
        plain = model(x)
        with capture_attention(model) as maps:
            captured = model(x)
    assert torch.equal(plain, captured)
    spatial = maps.of_kind("spatial")
    assert len(spatial) == 8 and len(maps.of_kind("channel")) == 8
    # stem: (T, H / 2, W / 2) = (4, 8, 8); stages 2-4 halve T (down to 1), H and W
    for stage, (t, h) in enumerate([(4, 8), (2, 4), (1, 2), (1, 1)], start=1):
        for block in (0, 1):
            path = f"layer{stage}.{block}.attention"
            assert spatial[f"{path}.spatial_gate"].shape == (1, 1, t, h, h)
            assert maps[f"{path}.channel_gate"]["channel"].shape == (1, 64 * 2 ** (stage - 1), 1, 1, 1)
            assert maps.sites[f"{path}.spatial_gate"] == path


def test_retrofitted_bam_with_identity_init_is_captured_under_its_wrapper():
    torchvision_video = pytest.importorskip("torchvision.models.video")
    model = models.add_attention(torchvision_video.r3d_18(num_classes=5), "bam", identity_init=True).eval()
    with torch.no_grad(), capture_attention(model, ("spatial", "temporal")) as maps:
        model(torch.randn(1, 3, 4, 16, 16))
    assert _shapes(maps) == {
        "bam1.attention.spatial_gate": {"spatial": (1, 1, 4, 8, 8), "temporal": (1, 1, 4, 1, 1)},
        "bam2.attention.spatial_gate": {"spatial": (1, 1, 2, 4, 4), "temporal": (1, 1, 2, 1, 1)},
        "bam3.attention.spatial_gate": {"spatial": (1, 1, 1, 2, 2), "temporal": (1, 1, 1, 1, 1)},
    }
    assert maps.sites["bam2.attention.spatial_gate"] == "bam2.attention"


def test_entering_one_capture_twice_is_refused_rather_than_returning_the_first_pass_maps():
    model = nn.Sequential(CBAM(8, dims=2))
    capture = capture_attention(model)
    with capture as maps:
        model(torch.randn(2, 8, 6, 6))
    assert maps
    with pytest.raises(RuntimeError, match="already entered once .* make a new one for each pass"), capture:
        pass
    with capture_attention(model) as fresh:
        model(torch.randn(2, 8, 6, 6))
    assert fresh.keys() == maps.keys()
