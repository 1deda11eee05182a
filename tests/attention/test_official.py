"""The 2D path is the paper's block: same numbers as the official CBAM/BAM code for the same weights.

The reference modules below re-state the official blocks (Jongchan/attention-module MODELS/cbam.py and
MODELS/bam.py) from their description, with the official module names so their state_dicts have the
official keys. They pool with the 2D window functions the official code uses, independently of cbam3d's
N-d pooling.
"""

from collections import OrderedDict

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cbam3d import BAM, CBAM, from_official, to_official


class ReferenceChannelGate(nn.Module):
    def __init__(self, channels, reduction, pool_types):
        super().__init__()
        self.pool_types = pool_types
        self.mlp = nn.Sequential(
            nn.Flatten(),
            nn.Linear(channels, channels // reduction),
            nn.ReLU(),
            nn.Linear(channels // reduction, channels),
        )

    def forward(self, x):
        window = (x.size(2), x.size(3))
        total = 0
        for pool_type in self.pool_types:
            if pool_type == "avg":
                pooled = F.avg_pool2d(x, window, stride=window)
            elif pool_type == "max":
                pooled = F.max_pool2d(x, window, stride=window)
            elif pool_type == "lp":
                pooled = F.lp_pool2d(x, 2, window, stride=window)
            else:  # lse, shifted by the max for stability
                flat = x.view(x.size(0), x.size(1), -1)
                peak = flat.max(dim=2, keepdim=True).values
                pooled = peak + (flat - peak).exp().sum(dim=2, keepdim=True).log()
            total = total + self.mlp(pooled)
        return x * torch.sigmoid(total)[:, :, None, None]


class ReferenceConvBN(nn.Module):
    def __init__(self, kernel_size):
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=(kernel_size - 1) // 2, bias=False)
        self.bn = nn.BatchNorm2d(1, eps=1e-5, momentum=0.01, affine=True)

    def forward(self, x):
        return self.bn(self.conv(x))


class ReferenceSpatialGate(nn.Module):
    def __init__(self):
        super().__init__()
        self.spatial = ReferenceConvBN(7)

    def forward(self, x):
        compressed = torch.cat([x.max(dim=1, keepdim=True)[0], x.mean(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.spatial(compressed))


class ReferenceCBAM(nn.Module):
    def __init__(self, channels, reduction=16, pool_types=("avg", "max"), no_spatial=False):
        super().__init__()
        self.ChannelGate = ReferenceChannelGate(channels, reduction, pool_types)
        self.no_spatial = no_spatial
        if not no_spatial:
            self.SpatialGate = ReferenceSpatialGate()

    def forward(self, x):
        out = self.ChannelGate(x)
        return out if self.no_spatial else self.SpatialGate(out)


class ReferenceBAM(nn.Module):
    """The released BAM: x * (1 + sigmoid(Mc * Ms)); the channel branch avg-pools with an H x H window."""

    def __init__(self, channels, reduction=16, dilation=4, num_dilated=2):
        super().__init__()
        hidden = channels // reduction
        self.channel_att = nn.Module()
        self.channel_att.gate_c = nn.Sequential(
            OrderedDict(
                [
                    ("flatten", nn.Flatten()),
                    ("gate_c_fc_0", nn.Linear(channels, hidden)),
                    ("gate_c_bn_1", nn.BatchNorm1d(hidden)),
                    ("gate_c_relu_1", nn.ReLU()),
                    ("gate_c_fc_final", nn.Linear(hidden, channels)),
                ]
            )
        )
        layers = [
            ("gate_s_conv_reduce0", nn.Conv2d(channels, hidden, 1)),
            ("gate_s_bn_reduce0", nn.BatchNorm2d(hidden)),
            ("gate_s_relu_reduce0", nn.ReLU()),
        ]
        for i in range(num_dilated):
            layers += [
                (f"gate_s_conv_di_{i}", nn.Conv2d(hidden, hidden, 3, padding=dilation, dilation=dilation)),
                (f"gate_s_bn_di_{i}", nn.BatchNorm2d(hidden)),
                (f"gate_s_relu_di_{i}", nn.ReLU()),
            ]
        layers.append(("gate_s_conv_final", nn.Conv2d(hidden, 1, 1)))
        self.spatial_att = nn.Module()
        self.spatial_att.gate_s = nn.Sequential(OrderedDict(layers))

    def forward(self, x):
        pooled = F.avg_pool2d(x, x.size(2), stride=x.size(2))
        channel = self.channel_att.gate_c(pooled)[:, :, None, None].expand_as(x)
        spatial = self.spatial_att.gate_s(x).expand_as(x)
        return (1 + torch.sigmoid(channel * spatial)) * x


def paired(reference: nn.Module, ours: nn.Module, randomize) -> tuple[nn.Module, nn.Module]:
    """The reference block with random weights and statistics, and ours loaded from its official state_dict."""
    randomize(reference)
    ours.load_state_dict(from_official(reference.state_dict()), strict=True)
    return reference, ours


CBAM_CASES = [
    dict(pool_types=("avg", "max")),
    dict(pool_types=("avg", "max", "lp", "lse")),
    dict(pool_types=("lse", "avg")),
    dict(pool_types=("avg", "max"), no_spatial=True),
]


@pytest.mark.parametrize(
    "case", CBAM_CASES, ids=lambda c: "-".join(c["pool_types"]) + ("-nospatial" if c.get("no_spatial") else "")
)
@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
def test_cbam_2d_matches_official_block_output_and_bn_statistics(case, train, randomize):
    reference, ours = paired(
        ReferenceCBAM(64, 16, **case),
        CBAM(64, dims=2, pool_types=case["pool_types"], spatial=not case.get("no_spatial", False)),
        randomize,
    )
    reference.train(train), ours.train(train)
    x = torch.randn(4, 64, 9, 11)
    torch.testing.assert_close(ours(x), reference(x), rtol=1e-5, atol=1e-5)
    # After the step, the BatchNorm running statistics are the same (momentum 0.01 in both).
    ours_state = ours.state_dict()
    for key, value in from_official(reference.state_dict()).items():
        torch.testing.assert_close(ours_state[key], value, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
def test_bam_product_2d_matches_released_code(train, randomize):
    reference, ours = paired(ReferenceBAM(64), BAM(64, dims=2, combine="product"), randomize)
    reference.train(train), ours.train(train)
    x = torch.randn(4, 64, 12, 12)  # square: the released code pools with an H x H window
    torch.testing.assert_close(ours(x), reference(x), rtol=1e-5, atol=1e-5)
    ours_state = ours.state_dict()
    for key, value in from_official(reference.state_dict()).items():
        torch.testing.assert_close(ours_state[key], value, rtol=1e-6, atol=1e-6)


def test_bam_sum_is_the_papers_formula(randomize):
    bam = randomize(BAM(32, dims=2)).eval()
    x = torch.randn(2, 32, 10, 7)
    channel, spatial = bam.channel_gate.logits(x), bam.spatial_gate.logits(x)
    torch.testing.assert_close(bam(x), x * (1 + torch.sigmoid(channel + spatial)))


def test_bam_pools_globally_on_non_square_inputs():
    """The released code's H x H window would leave a (W // H)-wide map here; ours averages everything."""
    bam = BAM(32, dims=2).eval()
    x = torch.randn(2, 32, 4, 12)
    expected = bam.channel_gate.mlp(x.mean(dim=(2, 3)))
    torch.testing.assert_close(bam.channel_gate.logits(x)[:, :, 0, 0], expected)


def test_from_official_accepts_dataparallel_checkpoints_and_to_official_inverts_it():
    reference = ReferenceCBAM(32)
    checkpoint = {"epoch": 90, "state_dict": {f"module.{k}": v for k, v in reference.state_dict().items()}}
    converted = from_official(checkpoint)
    CBAM(32).load_state_dict(converted, strict=True)
    assert list(to_official(converted)) == list(reference.state_dict())


def test_official_resnet_keys_rename_the_block_attribute_and_keep_the_rest():
    keys = {
        "module.conv1.weight": torch.zeros(1),
        "module.layer1.0.cbam.ChannelGate.mlp.1.weight": torch.zeros(1),
        "module.layer1.0.cbam.SpatialGate.spatial.bn.running_mean": torch.zeros(1),
        "module.bam1.spatial_att.gate_s.gate_s_conv_di_1.weight": torch.zeros(1),
        "module.layer1.0.downsample.1.weight": torch.zeros(1),
        "module.fc.weight": torch.zeros(1),
    }
    converted = from_official({"state_dict": keys})
    assert list(converted) == [
        "conv1.weight",
        "layer1.0.attention.channel_gate.mlp.0.weight",
        "layer1.0.attention.spatial_gate.bn.running_mean",
        "bam1.spatial_gate.dilated.1.0.weight",
        "layer1.0.downsample.1.weight",
        "fc.weight",
    ]
    without_bam = {k: v for k, v in converted.items() if not k.startswith("bam1.")}
    assert list(to_official(without_bam)) == [k[len("module.") :] for k in keys if ".bam1." not in k]


def test_bam_round_trip_through_official_keys_is_exact():
    state = BAM(32).state_dict()
    official = to_official(state)
    assert "channel_att.gate_c.gate_c_fc_0.weight" in official
    assert list(from_official(official)) == list(state)


@pytest.mark.parametrize(
    "state_dict, message",
    [
        ({"encoder.weight": torch.zeros(1)}, "not an official"),
        (CBAM(32).state_dict(), "already has cbam3d's keys"),
        ({"ChannelGate.mlp.9.weight": torch.zeros(1)}, "unrecognised key"),
    ],
    ids=["other-architecture", "already-converted", "unknown-official-key"],
)
def test_from_official_rejects_foreign_state_dicts(state_dict, message):
    with pytest.raises(ValueError, match=message):
        from_official(state_dict)


def test_to_official_rejects_modules_the_official_code_lacks():
    with pytest.raises(ValueError, match="no counterpart"):
        to_official(CBAM(32, dims=3, spatial_mode="factorized").state_dict())
