"""Starting weights for training (``--pretrained PATH``).

Accepted files:

* torchvision's video-ResNet weights (``r3d_18``, ``mc3_18``, ``r2plus1d_18`` state dicts, e.g. from
  ``torchvision.models.video.r3d_18(weights=...).state_dict()``), mapped with ``models.from_torchvision``;
* a 2D ImageNet-style state dict (4-D convolution kernels), inflated to the 3D network with ``models.inflate``,
  or a 2D checkpoint already inflated and saved as a 3D state dict;
* our own training checkpoints (``.ckpt``), or any file holding a state dict, bare or under ``"state_dict"``
  or ``"model"``;
* 3D-ResNets-PyTorch checkpoints (``{"arch": "resnet-18", "state_dict": {...}, "epoch", "optimizer"}``) and
  MedicalNet's (``{"state_dict": {...}}``): their ResNets name their weights as ours do (``conv1``, ``bn1``,
  ``layer1.0.conv1``, ..., ``downsample.0``, ``fc``), and their ``arch`` ``resnet-N`` is our ``resnet3d-N``,
  which the network must then be.

Keys saved from ``nn.DataParallel`` (prefixed ``module.``, as the older 3D-ResNets-PyTorch releases and
MedicalNet are) are taken without the prefix.

Weights whose shape differs from the network's (the classifier when the class counts differ) are left at
their fresh initialisation and reported, as are missing and unexpected keys.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cbam3d.inference.checkpoint import _torch_load, model_state_dict, unwrap_model_keys
from cbam3d.models import from_torchvision
from cbam3d.models.inflation import inflatable, inflate_tensor

__all__ = ["PretrainedReport", "load_pretrained"]

_TORCHVISION_STEM = "stem."
_CLASSIFIER = "fc."
_DATA_PARALLEL_PREFIX = "module."
_THREE_D_RESNETS_ARCH = re.compile(r"^resnet-(?P<depth>\d+)$")


@dataclass
class PretrainedReport:
    """What :func:`load_pretrained` did.

    Attributes:
        source: the kind of file recognised ("cbam3d checkpoint", "torchvision video ResNet", "2D (inflated)", ...).
        loaded: the number of tensors copied into the network.
        missing: network keys the file did not provide (attention modules new to a plain network, ...).
        unexpected: file keys the network has no place for.
        mismatched: keys present in both with different shapes, left freshly initialised.
        head_reinitialised: whether the classifier ``fc`` was among the mismatched (class counts differ).
    """

    source: str
    loaded: int = 0
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    head_reinitialised: bool = False

    def summary(self) -> str:
        """A few lines for the log."""
        lines = [f"pretrained weights ({self.source}): {self.loaded} tensors loaded"]
        if self.head_reinitialised:
            lines.append("  classifier fc re-initialised (class count differs)")
        for title, keys in (
            ("missing (left as initialised)", self.missing),
            ("unexpected (ignored)", self.unexpected),
            ("shape mismatch (left as initialised)", self.mismatched),
        ):
            if keys:
                shown = ", ".join(keys[:8]) + (f", ... ({len(keys) - 8} more)" if len(keys) > 8 else "")
                lines.append(f"  {len(keys)} {title}: {shown}")
        return "\n".join(lines)


def trained_as(obj: Any) -> str | None:
    """Our name of the network a 3D-ResNets-PyTorch checkpoint was trained as (``"resnet-18"`` -> ``"resnet3d-18"``),
    or None when the file does not say (or names another kind of network)."""
    arch = obj.get("arch") if isinstance(obj, dict) else None
    match = _THREE_D_RESNETS_ARCH.match(arch) if isinstance(arch, str) else None
    return f"resnet3d-{match['depth']}" if match else None


def _extract_state_dict(obj: Any, path: Path) -> tuple[dict[str, torch.Tensor], str]:
    if isinstance(obj, dict) and "cbam3d" in obj and "state_dict" in obj:
        return model_state_dict(obj), "cbam3d checkpoint"
    source = (
        f"3D-ResNets-PyTorch checkpoint, arch {obj['arch']}"
        if isinstance(obj, dict) and "arch" in obj
        else "state dict"
    )
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(
            f"pretrained weights {path}: no state dict found (expected a dict of tensors, bare or under "
            "'state_dict' or 'model')"
        )
    if any(key.startswith(_DATA_PARALLEL_PREFIX) for key in obj):
        obj = {key.removeprefix(_DATA_PARALLEL_PREFIX): value for key, value in obj.items()}
        source += " saved from DataParallel (module. prefix taken off)"
    return unwrap_model_keys(obj, keep_others=True), source


def _inflate_2d(state: dict[str, torch.Tensor], own: dict[str, torch.Tensor]) -> dict[str, torch.Tensor] | None:
    """The 2D kernels of ``state`` inflated to the network's 3D ones (I3D-style, ``models.inflate``'s
    "centre" mode for odd temporal kernels, "repeat" for even ones); None when ``state`` has no 2D kernel."""
    pairs = {
        key: own[key].shape[2]
        for key, value in state.items()
        if key in own and value.dim() == 4 and inflatable(value.shape, own[key].shape)
    }
    if not pairs:
        return None
    return {
        key: inflate_tensor(value, pairs[key], "centre" if pairs[key] % 2 else "repeat") if key in pairs else value
        for key, value in state.items()
    }


def load_pretrained(model: nn.Module, path: str | os.PathLike, *, model_name: str | None = None) -> PretrainedReport:
    """Copy the weights of ``path`` into ``model`` where names and shapes agree (see the module docstring).

    Args:
        model: the network.
        path: the weights.
        model_name: ``model``'s registry name; checked against the network a 3D-ResNets-PyTorch checkpoint
            says it was trained as.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        ValueError: if the file holds no state dict, was trained as another network than ``model_name``, or
            shares no weight at all with ``model``.
    """
    path = Path(path)
    content = _torch_load(path, "cpu")
    architecture = trained_as(content)
    if architecture is not None and model_name is not None and architecture != model_name:
        raise ValueError(
            f"pretrained weights {path} are a {content['arch']} (our {architecture}), not a {model_name}: "
            f"train with --model {architecture}"
        )
    state, source = _extract_state_dict(content, path)
    own = model.state_dict()
    if any(key.startswith(_TORCHVISION_STEM) for key in state):
        try:
            state, source = from_torchvision(state), "torchvision video ResNet"
        except ValueError as error:
            raise ValueError(f"pretrained weights {path}: {error}") from error
    elif (inflated := _inflate_2d(state, own)) is not None:
        state, source = inflated, "2D weights, inflated"
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    mismatched = sorted(k for k in state if k in own and own[k].shape != state[k].shape)
    report = PretrainedReport(
        source=source,
        loaded=len(usable),
        missing=sorted(k for k in own if k not in state),
        unexpected=sorted(k for k in state if k not in own),
        mismatched=mismatched,
        head_reinitialised=any(k.startswith(_CLASSIFIER) for k in mismatched),
    )
    if not usable:
        raise ValueError(
            f"pretrained weights {path}: none of its {len(state)} weights fits the network "
            f"(first keys: {', '.join(list(state)[:3])})"
        )
    model.load_state_dict(usable, strict=False)
    return report
