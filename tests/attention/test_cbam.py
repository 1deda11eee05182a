"""CBAM's own settings: its spatial kernel in each dims, the framewise and factorized spatio-temporal gates, and the
order of its two gates."""

import pytest
import torch

from cbam3d import CBAM
from cbam3d.attention.cbam import GATE_ORDERS


def test_only_conv_kernel_shapes_differ_between_dims():
    shapes = {
        dims: {k: tuple(v.shape) for k, v in CBAM(32, dims=dims, kernel_size=7).state_dict().items()} for dims in (2, 3)
    }
    differing = {k for k in shapes[2] if shapes[2][k] != shapes[3][k]}
    assert differing == {"spatial_gate.conv.weight"}
    assert shapes[3]["spatial_gate.conv.weight"] == (1, 2, 7, 7, 7)


def test_default_3d_kernel_is_3x7x7_and_2d_is_7x7():
    assert CBAM(8, dims=3).spatial_gate.kernel_size == (3, 7, 7)
    assert CBAM(8, dims=2).spatial_gate.kernel_size == (7, 7)
    assert CBAM(8, dims=3, kernel_size=5).spatial_gate.kernel_size == (5, 5, 5)


def test_framewise_3d_gate_treats_frames_independently():
    cbam = CBAM(16, dims=3, spatial_mode="framewise").eval()
    clip = torch.randn(1, 16, 5, 8, 8)
    changed = clip.clone()
    changed[:, :, 4] += 3.0
    spatial = cbam.spatial_gate
    torch.testing.assert_close(spatial.attention(clip)[:, :, :4], spatial.attention(changed)[:, :, :4])


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


def test_gate_orders_give_different_outputs(randomize):
    torch.manual_seed(0)
    base = randomize(CBAM(16, dims=2)).eval()
    x = torch.randn(2, 16, 6, 6)
    outputs = []
    for order in ("channel_spatial", "spatial_channel", "parallel"):
        cbam = CBAM(16, dims=2, gate_order=order).eval()
        cbam.load_state_dict(base.state_dict())
        outputs.append(cbam(x))
    assert not torch.allclose(outputs[0], outputs[1]) and not torch.allclose(outputs[0], outputs[2])


@pytest.mark.parametrize("gate_order", GATE_ORDERS)
def test_every_gate_order_keeps_the_inputs_dtype_under_autocast(gate_order):
    """A bf16 input (a convolution's output under autocast) gives a bf16 output: the gates' float32 maps do not
    promote it (forward only: bf16 convolution backward is not run on the CPU)."""
    cbam = CBAM(16, dims=2, reduction=4, kernel_size=3, gate_order=gate_order).eval()
    x = torch.randn(2, 16, 6, 6, dtype=torch.bfloat16)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        assert cbam(x).dtype == torch.bfloat16
