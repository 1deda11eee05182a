"""N-d behaviour of SE, CBAM and BAM: shapes, state_dicts, the one-frame property, lazy channels,
gate orders, spatio-temporal modes, memory formats, autocast and torch.compile."""

import pytest
import torch
from torch import nn

from cbam3d import BAM, CBAM, SE, ChannelGate, create_attention

SHAPES = {1: (2, 32, 10), 2: (2, 32, 6, 7), 3: (2, 32, 4, 6, 7)}
MODULES = {"se": SE, "cbam": CBAM, "bam": BAM}


@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("name", list(MODULES))
def test_output_has_the_input_shape_in_every_dims(name, dims):
    x = torch.randn(SHAPES[dims])
    assert MODULES[name](32, dims=dims)(x).shape == x.shape


@pytest.mark.parametrize("name", list(MODULES))
def test_state_dict_keys_are_the_same_in_every_dims(name):
    keys = {dims: list(MODULES[name](32, dims=dims).state_dict()) for dims in (1, 2, 3)}
    assert keys[1] == keys[2] == keys[3]


def test_only_conv_kernel_shapes_differ_between_dims():
    shapes = {
        dims: {k: tuple(v.shape) for k, v in CBAM(32, dims=dims, kernel_size=7).state_dict().items()} for dims in (2, 3)
    }
    differing = {k for k in shapes[2] if shapes[2][k] != shapes[3][k]}
    assert differing == {"spatial_gate.conv.weight"}
    assert shapes[3]["spatial_gate.conv.weight"] == (1, 2, 7, 7, 7)


def _load_2d_into_framewise_3d(module_2d: nn.Module, module_3d: nn.Module) -> None:
    state = {k: v.unsqueeze(2) if k.endswith("conv.weight") else v for k, v in module_2d.state_dict().items()}
    module_3d.load_state_dict(state, strict=True)


def _randomize_bn(module: nn.Module) -> None:
    for bn in module.modules():
        if isinstance(bn, nn.modules.batchnorm._BatchNorm):
            bn.running_mean.uniform_(-1, 1), bn.running_var.uniform_(0.5, 2)
            bn.weight.data.uniform_(0.5, 2), bn.bias.data.uniform_(-1, 1)


@pytest.mark.parametrize(
    "make_2d, make_3d",
    [
        (lambda: CBAM(32, dims=2), lambda: CBAM(32, dims=3, kernel_size=(1, 7, 7))),
        (lambda: CBAM(32, dims=2, kernel_size=3), lambda: CBAM(32, dims=3, spatial_mode="framewise", kernel_size=3)),
        (lambda: SE(32, dims=2), lambda: SE(32, dims=3)),
    ],
    ids=["cbam-1x7x7", "cbam-framewise", "se"],
)
@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
def test_one_frame_clip_in_3d_equals_the_2d_block_on_that_frame(make_2d, make_3d, train):
    torch.manual_seed(0)
    module_2d, module_3d = make_2d(), make_3d()
    _randomize_bn(module_2d)
    _load_2d_into_framewise_3d(module_2d, module_3d)
    module_2d.train(train), module_3d.train(train)
    frame = torch.randn(3, 32, 9, 8)
    torch.testing.assert_close(module_3d(frame.unsqueeze(2)).squeeze(2), module_2d(frame), rtol=1e-5, atol=1e-6)


def test_framewise_3d_gate_treats_frames_independently():
    cbam = CBAM(16, dims=3, spatial_mode="framewise").eval()
    clip = torch.randn(1, 16, 5, 8, 8)
    changed = clip.clone()
    changed[:, :, 4] += 3.0
    spatial = cbam.spatial_gate
    torch.testing.assert_close(spatial.attention(clip)[:, :, :4], spatial.attention(changed)[:, :, :4])


def test_default_3d_kernel_is_3x7x7_and_2d_is_7x7():
    assert CBAM(8, dims=3).spatial_gate.kernel_size == (3, 7, 7)
    assert CBAM(8, dims=2).spatial_gate.kernel_size == (7, 7)
    assert CBAM(8, dims=3, kernel_size=5).spatial_gate.kernel_size == (5, 5, 5)


def test_factorized_gate_applies_a_per_frame_temporal_gate_then_a_framewise_spatial_gate():
    cbam = CBAM(16, dims=3, spatial_mode="factorized", kernel_size=(3, 5, 5)).eval()
    gate = cbam.spatial_gate
    x = torch.randn(2, 16, 4, 6, 6)
    temporal = gate.temporal.attention(x)
    assert temporal.shape == (2, 1, 4, 1, 1)
    assert gate.spatial.kernel_size == (1, 5, 5)
    expected = (x * temporal) * gate.spatial.attention(x * temporal)
    torch.testing.assert_close(gate(x), expected)
    torch.testing.assert_close(x * gate.attention(x), expected)


def test_factorized_gate_works_on_a_two_frame_clip():
    """Deep in a 3D ResNet a 16-frame clip has T=2."""
    x = torch.randn(2, 64, 2, 7, 7)
    assert CBAM(64, dims=3, spatial_mode="factorized")(x).shape == x.shape


@pytest.mark.parametrize("order", ["channel_spatial", "spatial_channel", "parallel"])
def test_gate_order_composes_the_gates_as_named(order):
    cbam = CBAM(16, dims=2, gate_order=order).eval()
    channel, spatial = cbam.channel_gate, cbam.spatial_gate
    x = torch.randn(2, 16, 6, 6)
    expected = {
        "channel_spatial": lambda: spatial(channel(x)),
        "spatial_channel": lambda: channel(spatial(x)),
        "parallel": lambda: x * channel.attention(x) * spatial.attention(x),
    }[order]()
    torch.testing.assert_close(cbam(x), expected)


def test_gate_orders_give_different_outputs():
    torch.manual_seed(0)
    base = CBAM(16, dims=2).eval()
    _randomize_bn(base)
    x = torch.randn(2, 16, 6, 6)
    outputs = []
    for order in ("channel_spatial", "spatial_channel", "parallel"):
        cbam = CBAM(16, dims=2, gate_order=order).eval()
        cbam.load_state_dict(base.state_dict())
        outputs.append(cbam(x))
    assert not torch.allclose(outputs[0], outputs[1]) and not torch.allclose(outputs[0], outputs[2])


@pytest.mark.parametrize("name", list(MODULES))
def test_lazy_channels_are_taken_from_the_first_input(name):
    lazy = MODULES[name](dims=3)
    assert lazy.channels is None
    x = torch.randn(2, 24, 2, 5, 5)
    assert lazy(x).shape == x.shape
    assert lazy.channels == 24
    eager = MODULES[name](24, dims=3)
    assert {k: v.shape for k, v in lazy.state_dict().items()} == {k: v.shape for k, v in eager.state_dict().items()}


def test_lazy_module_is_built_by_load_state_dict():
    eager = CBAM(24, dims=2)
    lazy = CBAM(dims=2)
    lazy.load_state_dict(eager.state_dict(), strict=True)
    assert lazy.channels == 24
    x = torch.randn(2, 24, 5, 5)
    torch.testing.assert_close(lazy(x), eager(x))


def test_lazy_module_is_built_in_the_inputs_dtype():
    lazy = SE(dims=1)
    lazy(torch.randn(2, 8, 5, dtype=torch.float64))
    assert lazy.mlp[0].weight.dtype == torch.float64


def test_reduction_larger_than_channels_keeps_one_hidden_unit():
    gate = ChannelGate(8, dims=2, reduction=16)
    assert gate.mlp[0].out_features == 1
    assert BAM(8, dims=2).spatial_gate.reduce[0].out_channels == 1


@pytest.mark.parametrize("dims, memory_format", [(2, torch.channels_last), (3, torch.channels_last_3d)])
@pytest.mark.parametrize("name", list(MODULES))
def test_channels_last_inputs_give_the_same_numbers_and_keep_their_layout(name, dims, memory_format):
    module = MODULES[name](32, dims=dims).eval()
    x = torch.randn(SHAPES[dims])
    y = module(x.contiguous(memory_format=memory_format))
    torch.testing.assert_close(y, module(x), rtol=1e-5, atol=1e-6)
    assert y.is_contiguous(memory_format=memory_format)


@pytest.mark.parametrize("name", list(MODULES))
def test_bf16_autocast_runs_and_stays_close_to_fp32(name):
    module = MODULES[name](32, dims=3).eval()
    x = torch.randn(SHAPES[3])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = module(x)
    assert y.shape == x.shape
    torch.testing.assert_close(y.float(), module(x), rtol=0.05, atol=0.05)


@pytest.mark.parametrize("name", list(MODULES))
def test_torch_compile_traces_without_graph_breaks(name):
    module = MODULES[name](32, dims=3).eval()
    x = torch.randn(SHAPES[3])
    compiled = torch.compile(module, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(x), module(x))


@pytest.mark.slow
def test_torch_compile_with_inductor_matches_eager():
    module = CBAM(32, dims=3).train()
    x = torch.randn(SHAPES[3], requires_grad=True)
    compiled = torch.compile(module)
    torch.testing.assert_close(compiled(x), module(x), rtol=1e-4, atol=1e-5)


def test_create_attention_by_name_and_by_callable():
    assert isinstance(create_attention("CBAM", 16, 3), CBAM)
    assert create_attention("bam", 16, 2, combine="product").combine == "product"
    custom = create_attention(lambda channels, dims: nn.Identity(), 16, 3)
    assert isinstance(custom, nn.Identity)
    with pytest.raises(ValueError, match="unknown attention 'gcnet'"):
        create_attention("gcnet", 16, 3)
    with pytest.raises(TypeError, match="must return an nn.Module"):
        create_attention(lambda channels, dims: 3, 16, 3)
