"""The papers' 2D ResNets: equivalence with the official networks, parameter counts, initialisation.

``Official*`` below re-states the networks of Jongchan/attention-module (``MODELS/model_resnet.py``,
``cbam.py``, ``bam.py``) from their description, with the official attribute names, so that their
state_dicts look like the released checkpoints:

- ResNet: ``conv1`` (7x7/2) ``bn1`` relu ``maxpool`` (3x3/2), ``layer1..4``, BAM ``bam1..3`` after
  layers 1-3, average pool, ``fc``. Blocks: ``conv1 bn1 conv2 bn2 (conv3 bn3)``, projection
  ``downsample`` (conv 1x1 + BN), attention ``cbam`` on the branch before the residual add.
- CBAM: ``ChannelGate.mlp`` = [flatten, Linear C->C/16, ReLU, Linear C/16->C] applied to the global
  average and the global max, summed, sigmoid; then ``SpatialGate``: ``compress`` = [max over C;
  mean over C], ``spatial.conv`` 7x7 (no bias) + ``spatial.bn`` (momentum 0.01), sigmoid.
- BAM: ``channel_att.gate_c`` = [flatten, gate_c_fc_0, gate_c_bn_1, gate_c_relu_1, gate_c_fc_final] on
  the global average; ``spatial_att.gate_s`` = 1x1 reduce (+BN, ReLU), two 3x3 convs of dilation 4
  (+BN, ReLU), 1x1 to one map; output ``x * (1 + sigmoid(channel * spatial))``.

The official pooling is ``AvgPool2d(7)``, the global average at 224 x 224; here it is the global mean
so that tests can use small images.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cbam3d import BAM, CBAM, SE, from_official, models


class OfficialChannelGate(nn.Module):
    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = channels // reduction
        self.mlp = nn.Sequential(nn.Flatten(), nn.Linear(channels, hidden), nn.ReLU(), nn.Linear(hidden, channels))

    def forward(self, x):
        pooled = [x.mean(dim=(2, 3), keepdim=True), x.amax(dim=(2, 3), keepdim=True)]
        logits = sum(self.mlp(p) for p in pooled)
        return x * torch.sigmoid(logits)[:, :, None, None]


class OfficialConvBN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, 7, padding=3, bias=False)
        self.bn = nn.BatchNorm2d(1, eps=1e-5, momentum=0.01)

    def forward(self, x):
        return self.bn(self.conv(x))


class OfficialSpatialGate(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.spatial = OfficialConvBN()

    def forward(self, x):
        compressed = torch.cat([x.amax(dim=1, keepdim=True), x.mean(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.spatial(compressed))


class OfficialCBAM(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.ChannelGate = OfficialChannelGate(channels)
        self.SpatialGate = OfficialSpatialGate()

    def forward(self, x):
        return self.SpatialGate(self.ChannelGate(x))


class OfficialBAMChannel(nn.Module):
    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = channels // reduction
        self.gate_c = nn.Sequential()
        self.gate_c.add_module("flatten", nn.Flatten())
        self.gate_c.add_module("gate_c_fc_0", nn.Linear(channels, hidden))
        self.gate_c.add_module("gate_c_bn_1", nn.BatchNorm1d(hidden))
        self.gate_c.add_module("gate_c_relu_1", nn.ReLU())
        self.gate_c.add_module("gate_c_fc_final", nn.Linear(hidden, channels))

    def forward(self, x):
        return self.gate_c(x.mean(dim=(2, 3)))[:, :, None, None]


class OfficialBAMSpatial(nn.Module):
    def __init__(self, channels: int, reduction: int = 16, dilation: int = 4) -> None:
        super().__init__()
        hidden = channels // reduction
        self.gate_s = nn.Sequential()
        self.gate_s.add_module("gate_s_conv_reduce0", nn.Conv2d(channels, hidden, 1))
        self.gate_s.add_module("gate_s_bn_reduce0", nn.BatchNorm2d(hidden))
        self.gate_s.add_module("gate_s_relu_reduce0", nn.ReLU())
        for i in range(2):
            self.gate_s.add_module(
                f"gate_s_conv_di_{i}", nn.Conv2d(hidden, hidden, 3, padding=dilation, dilation=dilation)
            )
            self.gate_s.add_module(f"gate_s_bn_di_{i}", nn.BatchNorm2d(hidden))
            self.gate_s.add_module(f"gate_s_relu_di_{i}", nn.ReLU())
        self.gate_s.add_module("gate_s_conv_final", nn.Conv2d(hidden, 1, 1))

    def forward(self, x):
        return self.gate_s(x)


class OfficialBAM(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channel_att = OfficialBAMChannel(channels)
        self.spatial_att = OfficialBAMSpatial(channels)

    def forward(self, x):
        return x * (1 + torch.sigmoid(self.channel_att(x) * self.spatial_att(x)))


class OfficialBlock(nn.Module):
    """Basic (two 3x3) or bottleneck (1x1, 3x3 with the stride, 1x1 x4) block."""

    def __init__(self, in_planes: int, planes: int, stride: int, bottleneck: bool, use_cbam: bool) -> None:
        super().__init__()
        expansion = 4 if bottleneck else 1
        out = planes * expansion
        if bottleneck:
            self.conv1 = nn.Conv2d(in_planes, planes, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(planes)
            self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
            self.bn3 = nn.BatchNorm2d(out)
        else:
            self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(planes)
            self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
        self.bottleneck = bottleneck
        self.downsample = None
        if stride != 1 or in_planes != out:
            self.downsample = nn.Sequential(nn.Conv2d(in_planes, out, 1, stride, bias=False), nn.BatchNorm2d(out))
        self.cbam = OfficialCBAM(out) if use_cbam else None

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.bottleneck:
            out = self.bn3(self.conv3(F.relu(out)))
        if self.cbam is not None:
            out = self.cbam(out)
        residual = x if self.downsample is None else self.downsample(x)
        return F.relu(out + residual)


OFFICIAL_LAYOUT = {
    18: (False, [2, 2, 2, 2]),
    34: (False, [3, 4, 6, 3]),
    50: (True, [3, 4, 6, 3]),
    101: (True, [3, 4, 23, 3]),
}


class OfficialResNet(nn.Module):
    def __init__(self, depth: int, att_type: str | None, num_classes: int = 1000) -> None:
        super().__init__()
        bottleneck, counts = OFFICIAL_LAYOUT[depth]
        expansion = 4 if bottleneck else 1
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        use_bam = att_type == "BAM"
        self.bam1 = OfficialBAM(64 * expansion) if use_bam else None
        self.bam2 = OfficialBAM(128 * expansion) if use_bam else None
        self.bam3 = OfficialBAM(256 * expansion) if use_bam else None
        in_planes = 64
        for index, (planes, count) in enumerate(zip((64, 128, 256, 512), counts), start=1):
            blocks = []
            for b in range(count):
                stride = 2 if index > 1 and b == 0 else 1
                blocks.append(OfficialBlock(in_planes, planes, stride, bottleneck, att_type == "CBAM"))
                in_planes = planes * expansion
            setattr(self, f"layer{index}", nn.Sequential(*blocks))
        self.fc = nn.Linear(512 * expansion, num_classes)

    def forward(self, x):
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        for index in range(1, 5):
            x = getattr(self, f"layer{index}")(x)
            bam = getattr(self, f"bam{index}", None)
            if bam is not None:
                x = bam(x)
        return self.fc(x.mean(dim=(2, 3)))


@pytest.mark.parametrize(
    "attention, expected",
    [(None, 25_557_032), ("cbam", 28_089_624), ("bam", 25_915_099), ("se", 28_088_024)],
)
def test_resnet50_parameter_counts_match_the_papers(attention, expected):
    """ResNet-50 has 25,557,032 parameters; +CBAM 28,089,624; +BAM 25,915,099; SE-ResNet-50 28,088,024."""
    with torch.device("meta"):
        model = models.resnet2d(50, attention=attention)
    assert models.count_parameters(model) == expected


@pytest.mark.parametrize(
    "depth, attention, kwargs",
    [(18, None, None), (18, "cbam", None), (50, "cbam", None), (50, "bam", {"combine": "product"})],
)
def test_official_checkpoint_loads_strictly_and_gives_the_same_logits(depth, attention, kwargs, randomize):
    """A released-style checkpoint ({"state_dict": ...} with "module." keys) of the official network, with
    random weights, loads strictly through cbam3d.from_official and reproduces the official logits."""
    official = randomize(OfficialResNet(depth, {"cbam": "CBAM", "bam": "BAM"}.get(attention)), seed=depth).eval()
    checkpoint = {"epoch": 90, "state_dict": {f"module.{k}": v for k, v in official.state_dict().items()}}
    ours = models.resnet2d(depth, attention=attention, attention_kwargs=kwargs).eval()
    ours.load_state_dict(from_official(checkpoint), strict=True)
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(ours(x), official(x), rtol=1e-4, atol=1e-5)


def test_attention_placement_follows_the_papers():
    """CBAM and SE sit in every block (``attention``), BAM only after layers 1-3 (``bam1..3``)."""
    with torch.device("meta"):
        for name, kind in (("cbam", CBAM), ("se", SE)):
            model = models.resnet2d(50, attention=name)
            blocks = [b for layer in (model.layer1, model.layer2, model.layer3, model.layer4) for b in layer]
            assert len(blocks) == 16 and all(isinstance(b.attention, kind) for b in blocks)
            assert model.bam1 is None and model.bam2 is None and model.bam3 is None
        model = models.resnet2d(50, attention="bam")
        assert [type(getattr(model, f"bam{i}")) for i in (1, 2, 3)] == [BAM] * 3
        assert all(b.attention is None for layer in (model.layer1, model.layer4) for b in layer)


def test_initialisation_follows_the_official_code():
    """Convs are kaiming-normal with fan_out, BN weight 1 / bias 0, the CBAM spatial-gate BN weight 0."""
    torch.manual_seed(0)
    model = models.resnet2d(50, attention="cbam")
    conv = model.layer4[0].conv2.weight  # 512 x 512 x 3 x 3: fan_out = 512 * 9
    assert conv.std().item() == pytest.approx((2 / (512 * 9)) ** 0.5, rel=0.05)
    assert torch.all(model.layer1[0].bn1.weight == 1) and torch.all(model.layer1[0].bn1.bias == 0)
    assert torch.all(model.layer3[2].attention.spatial_gate.bn.weight == 0)
    assert torch.all(model.fc.bias == 0)


def test_resnet2d_rejects_unknown_depth_listing_the_valid_ones():
    with pytest.raises(ValueError, match=r"\[18, 34, 50, 101\]"):
        models.resnet2d(152)


def test_resnet2d_rejects_a_clip_with_the_expected_layout_in_the_message():
    model = models.resnet2d(18)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        model(torch.randn(1, 3, 2, 32, 32))
