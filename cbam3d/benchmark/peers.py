"""The comparison users make: the blocks a user would pick instead of cbam3d's.

Measured by ``benchmark --peers`` (:func:`cbam3d.benchmark.runs.run_peers`, which also times whole training
steps), in the same run and with the same measuring code (:mod:`cbam3d.benchmark.measure`):

- 3D, one input: CBAM against the hand-written block, eager and under ``torch.compile``; SE against the
  hand-written SE (eager and compiled), MONAI's ``ChannelSELayer`` and fvcore's ``SqueezeExcitation``;
- 2D: CBAM against timm's ``CbamModule`` and ECA against timm's ``EcaModule``.

Equal work: the same channels, reduction 16 and spatial kernel in every implementation (timm's CBAM MLP
has no biases; cbam3d's, the paper's, has). A peer whose package is not installed is left out with a
note.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from cbam3d.attention.cbam import CBAM
from cbam3d.attention.channel import SE
from cbam3d.attention.eca import ECA

from .measure import Variant, compiled
from .reference import naive_like

__all__ = ["Peer", "PeerCase", "is_installed", "peer_cases", "peer_variants"]

REDUCTION = 16


@dataclass
class Peer:
    """A block a user might use instead of cbam3d's: ``make(channels)`` builds it; ``package`` must be
    importable (else the peer is skipped with a note)."""

    name: str
    package: str
    make: Callable[[int], nn.Module]


def _monai_se(channels: int) -> nn.Module:
    # Deferred: MONAI is an optional, heavy import that only this peer needs.
    from monai.networks.blocks import ChannelSELayer

    return ChannelSELayer(3, channels, r=REDUCTION)


def _fvcore_se(channels: int) -> nn.Module:
    # Deferred: fvcore is optional and only this peer needs it. Importing fvcore.nn scripts its focal loss,
    # which torch 2.14 answers with a FutureWarning about torch.jit.script that is fvcore's, not the user's.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*torch.jit.script.*", category=FutureWarning)
        from fvcore.nn.squeeze_excitation import SqueezeExcitation

    return SqueezeExcitation(channels, reduction_ratio=REDUCTION, is_3d=True)


def _timm_cbam(channels: int, kernel_size: int) -> nn.Module:
    # Deferred: timm is optional and only these peers need it.
    from timm.layers.cbam import CbamModule

    return CbamModule(channels, rd_ratio=1 / REDUCTION, spatial_kernel_size=kernel_size)


def _timm_eca(channels: int, kernel_size: int) -> nn.Module:
    # Deferred: as for _timm_cbam.
    from timm.layers.eca import EcaModule

    return EcaModule(channels, kernel_size=kernel_size)


def is_installed(package: str) -> bool:
    """Whether ``package`` imports."""
    try:
        importlib.import_module(package)
    except ImportError:
        return False
    return True


@dataclass
class PeerCase:
    """One block compared with its peers: ``ours`` (cbam3d's module), the input shape, the peers, the
    variant the ratios are taken against, and whether the hand-written block (eager and compiled) is
    measured too."""

    label: str
    shape: tuple[int, ...]
    ours: nn.Module
    peers: list[Peer]
    baseline: str
    hand_written: bool = False


def peer_cases(shape_3d: Sequence[int], shape_2d: Sequence[int], kernel_size: int) -> list[PeerCase]:
    """The block comparisons: CBAM and SE in 3D on ``shape_3d``, CBAM and ECA in 2D on ``shape_2d``."""
    torch.manual_seed(0)
    channels_3d, channels_2d = shape_3d[1], shape_2d[1]
    eca = ECA(channels_2d, 2)
    return [
        PeerCase(
            f"cbam 3d k={kernel_size}",
            tuple(shape_3d),
            CBAM(channels_3d, 3, reduction=REDUCTION, kernel_size=kernel_size),
            [],
            baseline="naive",
            hand_written=True,
        ),
        PeerCase(
            "se 3d",
            tuple(shape_3d),
            SE(channels_3d, 3, reduction=REDUCTION),
            [Peer("monai ChannelSELayer", "monai", _monai_se), Peer("fvcore SqueezeExcitation", "fvcore", _fvcore_se)],
            baseline="naive",
            hand_written=True,
        ),
        PeerCase(
            f"cbam 2d k={kernel_size}",
            tuple(shape_2d),
            CBAM(channels_2d, 2, reduction=REDUCTION, kernel_size=kernel_size),
            [Peer("timm CbamModule", "timm", lambda c: _timm_cbam(c, kernel_size))],
            baseline="timm CbamModule",
        ),
        PeerCase(
            "eca 2d",
            tuple(shape_2d),
            eca,
            [Peer("timm EcaModule", "timm", lambda c: _timm_eca(c, eca.kernel_size))],
            baseline="timm EcaModule",
        ),
    ]


def peer_variants(case: PeerCase, *, compile_blocks: bool, note: Callable[[str], None]) -> list[Variant]:
    """The variants of ``case``: the hand-written block (eager, and compiled with ``compile_blocks``) where the
    case has one, each installed peer, then cbam3d's block; ``note`` hears of each peer left out."""
    variants = []
    if case.hand_written:
        variants.append(Variant("naive", lambda: naive_like(case.ours)))
        if compile_blocks:
            variants.append(Variant("naive compiled", compiled(lambda: naive_like(case.ours))))
    for peer in case.peers:
        if is_installed(peer.package):
            variants.append(Variant(peer.name, lambda peer=peer: peer.make(case.shape[1])))
        else:
            note(f"{case.label}: {peer.name} skipped ({peer.package} is not installed)")
    variants.append(Variant("cbam3d", lambda: case.ours))
    return variants
