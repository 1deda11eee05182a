"""Convert state_dicts between the official CBAM/BAM code and cbam3d.

The official code is Jongchan/attention-module (``MODELS/cbam.py``, ``MODELS/bam.py``,
``MODELS/model_resnet.py``). Its keys differ from ours only inside the attention modules, and in the
name of a ResNet block's attention (``cbam`` there, ``attention`` here). Every other key is kept, so a
converted ResNet checkpoint loads strictly into ``models.resnet2d``.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Mapping

import torch

# (official, cbam3d) key fragments; "#" stands for a layer index. Each matches at a key-segment start.
# CBAM's and BAM's channel gates share the cbam3d name ``channel_gate.mlp.0``, so the two tables are
# kept apart for the way back.
_CBAM_FRAGMENTS: tuple[tuple[str, str], ...] = (
    ("ChannelGate.mlp.1.", "channel_gate.mlp.0."),
    ("ChannelGate.mlp.3.", "channel_gate.mlp.2."),
    ("SpatialGate.spatial.conv.", "spatial_gate.conv."),
    ("SpatialGate.spatial.bn.", "spatial_gate.bn."),
)
_BAM_FRAGMENTS: tuple[tuple[str, str], ...] = (
    ("channel_att.gate_c.gate_c_fc_0.", "channel_gate.mlp.0."),
    ("channel_att.gate_c.gate_c_bn_1.", "channel_gate.mlp.1."),
    ("channel_att.gate_c.gate_c_fc_final.", "channel_gate.mlp.3."),
    ("spatial_att.gate_s.gate_s_conv_reduce0.", "spatial_gate.reduce.0."),
    ("spatial_att.gate_s.gate_s_bn_reduce0.", "spatial_gate.reduce.1."),
    ("spatial_att.gate_s.gate_s_conv_di_#.", "spatial_gate.dilated.#.0."),
    ("spatial_att.gate_s.gate_s_bn_di_#.", "spatial_gate.dilated.#.1."),
    ("spatial_att.gate_s.gate_s_conv_final.", "spatial_gate.project."),
)
# A ResNet block's CBAM: official attribute ``cbam``, ours ``attention`` (renamed after the fragments).
_BLOCK_TO_OURS = (re.compile(r"(^|\.)cbam\.(?=channel_gate\.|spatial_gate\.)"), r"\g<1>attention.")
_BLOCK_TO_OFFICIAL = (re.compile(r"(^|\.)attention\.(?=ChannelGate\.|SpatialGate\.)"), r"\g<1>cbam.")

_OFFICIAL_MARKERS = ("ChannelGate.", "SpatialGate.", "channel_att.", "spatial_att.")
_OURS_MARKERS = ("channel_gate.", "spatial_gate.")


def _pattern(fragment: str) -> re.Pattern[str]:
    body = r"(\d+)".join(re.escape(part) for part in fragment.split("#"))
    return re.compile(r"(^|\.)" + body)


def _replacement(fragment: str) -> str:
    return r"\g<1>" + r"\g<2>".join(fragment.split("#"))


def _rules(fragments: tuple[tuple[str, str], ...], to_ours: bool) -> list[tuple[re.Pattern[str], str]]:
    pairs = [(a, b) if to_ours else (b, a) for a, b in fragments]
    return [(_pattern(source), _replacement(target)) for source, target in pairs]


_TO_OURS = _rules(_CBAM_FRAGMENTS + _BAM_FRAGMENTS, to_ours=True)
_CBAM_TO_OFFICIAL = _rules(_CBAM_FRAGMENTS, to_ours=False)
_BAM_TO_OFFICIAL = _rules(_BAM_FRAGMENTS, to_ours=False)
_MODULE_PREFIX = re.compile(r"^(.*?)(?:channel_gate|spatial_gate)\.")


def _unwrap(checkpoint: Mapping) -> Mapping[str, torch.Tensor]:
    if not isinstance(checkpoint, Mapping):
        raise TypeError(f"expected a state_dict or a checkpoint dict, got {type(checkpoint).__name__}")
    if "state_dict" in checkpoint and isinstance(checkpoint["state_dict"], Mapping):
        checkpoint = checkpoint["state_dict"]
    return checkpoint


def _convert_key(
    key: str, rules: list[tuple[re.Pattern[str], str]], block_rename: tuple[re.Pattern[str], str]
) -> str | None:
    """The converted key, or None when no attention fragment is in it."""
    for pattern, replacement in rules:
        converted, count = pattern.subn(replacement, key, count=1)
        if count:
            block_pattern, block_replacement = block_rename
            return block_pattern.sub(block_replacement, converted, count=1)
    return None


def from_official(state_dict: Mapping) -> OrderedDict[str, torch.Tensor]:
    """Map an official CBAM / BAM / ResNet state_dict to cbam3d's keys, to load with ``strict=True``.

    Accepts a CBAM or BAM module's state_dict or one of the official ResNets', with or without the
    ``module.`` prefix of DataParallel checkpoints, or a checkpoint dict holding ``"state_dict"``
    (the official ``.pth.tar`` files). Keys outside the attention modules are kept as they are.

    Raises:
        ValueError: if the state_dict is already in cbam3d's layout, or is from another architecture
            (neither official attention keys nor an official ResNet's ``conv1``/``fc``).
    """
    state_dict = _unwrap(state_dict)
    keys = [key[len("module.") :] if key.startswith("module.") else key for key in state_dict]
    if any(marker in key for key in keys for marker in _OURS_MARKERS):
        raise ValueError("this state_dict already has cbam3d's keys (channel_gate/spatial_gate); load it as it is")
    is_resnet = "conv1.weight" in keys and "fc.weight" in keys
    converted: OrderedDict[str, torch.Tensor] = OrderedDict()
    matched = False
    for key, value in zip(keys, state_dict.values()):
        new_key = _convert_key(key, _TO_OURS, _BLOCK_TO_OURS)
        if new_key is None and any(marker in key for marker in _OFFICIAL_MARKERS):
            raise ValueError(f"unrecognised key {key!r} in an official attention module")
        matched |= new_key is not None
        converted[new_key or key] = value
    if not matched and not is_resnet:
        sample = ", ".join(keys[:3])
        raise ValueError(
            "not an official CBAM, BAM or ResNet state_dict (Jongchan/attention-module): no ChannelGate/SpatialGate/"
            f"channel_att/spatial_att keys and no conv1/fc; first keys: {sample}"
        )
    return converted


def to_official(state_dict: Mapping) -> OrderedDict[str, torch.Tensor]:
    """The exact inverse of :func:`from_official`: cbam3d keys -> the official code's keys.

    Raises:
        ValueError: for attention parameters with no official counterpart (SE, the factorized 3D gate).
    """
    state_dict = _unwrap(state_dict)
    converted: OrderedDict[str, torch.Tensor] = OrderedDict()
    for key, value in state_dict.items():
        module = _MODULE_PREFIX.match(key)
        is_bam = module is not None and f"{module.group(1)}spatial_gate.reduce.0.weight" in state_dict
        new_key = _convert_key(key, _BAM_TO_OFFICIAL if is_bam else _CBAM_TO_OFFICIAL, _BLOCK_TO_OFFICIAL)
        if new_key is None and any(marker in key for marker in _OURS_MARKERS):
            raise ValueError(f"{key!r} has no counterpart in the official CBAM/BAM code")
        converted[new_key or key] = value
    return converted
