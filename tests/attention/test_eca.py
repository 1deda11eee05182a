"""ECA, the attention added through the registry alone: timm's numbers in 2D, the paper's kernel rule, any dims,
lazy loading, and its place in the networks."""

import pytest
import torch

from cbam3d import ECA, capture_attention
from cbam3d.attention.eca import eca_kernel_size


def test_eca_matches_timm_eca_module_for_the_same_weights():
    timm_layers = pytest.importorskip("timm.layers")
    for channels in (16, 64, 256):
        reference = timm_layers.EcaModule(channels).eval()
        ours = ECA(channels).eval()
        assert ours.kernel_size == reference.conv.kernel_size[0] == eca_kernel_size(channels)
        ours.conv.weight.data.copy_(torch.randn_like(reference.conv.weight))
        reference.conv.weight.data.copy_(ours.conv.weight)
        x = torch.randn(2, channels, 7, 7)
        torch.testing.assert_close(ours(x), reference(x), rtol=0, atol=1e-6)


def test_eca_kernel_follows_the_paper_rule():
    assert [eca_kernel_size(c) for c in (4, 8, 64, 127, 128, 512, 2048)] == [1, 3, 3, 3, 5, 5, 7]


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_eca_keeps_the_shape_in_every_dims_and_a_lazy_eca_loads_a_state_dict(dims):
    x = torch.randn(2, 64, *(4,) * dims)
    built = ECA(64, dims)
    lazy = ECA(dims=dims)
    lazy.load_state_dict(built.state_dict())
    assert built(x).shape == x.shape
    torch.testing.assert_close(lazy(x), built(x))
    with pytest.raises(ValueError, match="odd"):
        ECA(64, dims, kernel_size=4)


def test_eca_works_in_the_networks_and_reports_channel_maps():
    models = pytest.importorskip("cbam3d.models")
    network = models.resnet3d(10, num_classes=3, attention="eca", widen_factor=0.25).eval()
    with capture_attention(network) as maps:
        logits = network(torch.randn(1, 3, 4, 32, 32))
    assert logits.shape == (1, 3)
    assert maps and all(set(by_kind) == {"channel"} for by_kind in maps.values())
