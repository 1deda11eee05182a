"""The attention registry: one call declares an attention, and every place that takes one by name uses it."""

from __future__ import annotations

import copy
import pickle

import pytest
import torch
from torch import nn

import cbam3d
from cbam3d import CBAM, ECA, attention_names, capture_attention, create_attention, get_attention, register_attention
from cbam3d.attention.base import AttentionModule
from cbam3d.training.settings import attention_choices

tv_video = pytest.importorskip("torchvision.models.video")
models = pytest.importorskip("cbam3d.models")


class HalfGate(AttentionModule):
    """A toy attention: a learnt per-channel scale, reporting it as a channel map."""

    has_channel_parameters = True
    map_kind = "channel"

    def build(self, channels: int) -> None:
        self.scale = nn.Parameter(torch.full((channels,), 0.5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.prepare_input(x)
        weights = self.scale.reshape(1, -1, *(1,) * self.dims)
        self.report_map(weights.expand(x.shape[0], *weights.shape[1:]))
        return x * weights


@pytest.fixture
def half_gate():
    """HalfGate registered as "half" for the test, and removed afterwards."""
    register_attention("half", lambda channels, dims: HalfGate(dims) if channels is None else _built(channels, dims))
    yield
    cbam3d.unregister_attention("half")


def _built(channels, dims):
    gate = HalfGate(dims)
    gate.init_channels(channels)
    return gate


def test_one_registration_reaches_create_attention_create_model_add_attention_and_the_commands(half_gate):
    assert "half" in attention_names() and "half" in attention_choices()
    assert create_attention("half", 8, dims=3)(torch.ones(1, 8, 2, 2, 2)).max().item() == 0.5

    network = models.create_model("r3d_18", num_classes=5, attention="half")
    gates = [m for m in network.modules() if isinstance(m, HalfGate)]
    assert len(gates) == 8 and all(g.dims == 3 for g in gates)  # one per residual block

    retrofitted = models.add_attention(tv_video.r3d_18(num_classes=5), "half")
    assert sum(isinstance(m, HalfGate) for m in retrofitted.modules()) == 8
    with capture_attention(retrofitted) as maps:
        retrofitted(torch.randn(1, 3, 4, 32, 32))
    assert len(maps.of_kind("channel")) == 8


def test_registration_rejects_taken_reserved_and_malformed_names():
    with pytest.raises(ValueError, match="already registered"):
        register_attention("cbam", cbam3d.CBAM)
    with pytest.raises(ValueError, match="reserved"):
        register_attention("none", cbam3d.SE)
    with pytest.raises(ValueError, match="lower case"):
        register_attention("Mine", cbam3d.SE)
    with pytest.raises(ValueError, match="placement"):
        register_attention("mine", cbam3d.SE, placement="everywhere")
    with pytest.raises(TypeError, match="callable"):
        register_attention("mine", "SE")
    assert "mine" not in attention_names()


def test_the_registry_says_where_each_built_in_attention_goes():
    placements = {name: get_attention(name).placement for name in ("se", "cbam", "eca", "bam")}
    assert placements == {"se": "block", "cbam": "block", "eca": "block", "bam": "stage"}
    assert get_attention("CBAM") is get_attention("cbam")
    assert cbam3d.ATTENTION["eca"].builder is ECA


def test_create_attention_by_name_and_by_callable():
    assert isinstance(create_attention("CBAM", 16, 3), CBAM)
    assert create_attention("bam", 16, 2, combine="product").combine == "product"
    custom = create_attention(lambda channels, dims: nn.Identity(), 16, 3)
    assert isinstance(custom, nn.Identity)
    with pytest.raises(ValueError, match="unknown attention 'gcnet'"):
        create_attention("gcnet", 16, 3)
    with pytest.raises(TypeError, match="must return an nn.Module"):
        create_attention(lambda channels, dims: 3, 16, 3)


class _Widening(nn.Module):
    """Not an attention: doubles the channels."""

    def __init__(self, channels, dims):
        super().__init__()
        self.conv = nn.Conv3d(channels, 2 * channels, 1)

    def forward(self, x):
        return self.conv(x)


def test_a_registered_attention_that_changes_the_shape_is_refused_at_its_first_call_by_name():
    register_attention("widening", _Widening)
    try:
        network = cbam3d.models.create_model("resnet3d-10", num_classes=2, attention="widening", widen_factor=0.125)
        with pytest.raises(ValueError, match=r"attention 'widening' \(_Widening\) must return its input's shape"):
            network(torch.randn(1, 3, 4, 32, 32))
    finally:
        cbam3d.unregister_attention("widening")


def test_the_shape_check_of_a_registered_attention_survives_copies_and_passes_a_shape_keeping_one():
    module = get_attention(lambda channels, dims: nn.Identity()).build(8, 2)
    copied = copy.deepcopy(pickle.loads(pickle.dumps(module)))
    assert copied(torch.randn(2, 8, 4, 4)).shape == (2, 8, 4, 4)
