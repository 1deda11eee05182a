"""What a checkpoint carries besides the weights, and how to rebuild a ready-to-use model from it.

A training checkpoint (Lightning's ``.ckpt``) holds, under the key ``"cbam3d"``, an *info* dict::

    {
        "format": "cbam3d.video-classifier", "version": 1,
        "class_names": ["brush_hair", ...],                       # index -> name
        "model": {"name": "resnet3d-18", "attention": "cbam" | None,
                  "attention_kwargs": {...}, "options": {...}},     # models.create_model arguments
        "clip": {"frames": 16, "sampling_rate": 4, "size": 112, "eval_resize": 128,
                 "mean": [...], "std": [...]},                      # the input the network expects
        "history": [{"epoch": 0, "train_loss": ..., "train_top1": ..., "val_loss": ..., "val_top1": ...,
                     "val_top5": ...}, ...],                        # one entry per completed epoch
        "config": {...},                                            # the TrainConfig of the run
        "multi_label": False,                                       # True: one sigmoid per class
    }

and the network weights in ``state_dict`` under the prefix ``"model."``. This module needs torch and the
``models`` package only (no Lightning), so evaluation, prediction and visualisation load checkpoints cheaply.
"""

from __future__ import annotations

import os
import pickle
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cbam3d.models import create_model

__all__ = [
    "CHECKPOINT_FORMAT",
    "ClipSpec",
    "ModelSpec",
    "build_model",
    "is_multi_label",
    "load_checkpoint",
    "read_checkpoint_info",
]

CHECKPOINT_FORMAT = "cbam3d.video-classifier"
CHECKPOINT_VERSION = 1
MODEL_PREFIX = "model."


@dataclass(frozen=True)
class ModelSpec:
    """The arguments of ``models.create_model`` (besides ``num_classes``)."""

    name: str
    attention: str | None = None
    attention_kwargs: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ClipSpec:
    """The clips a network was trained on: ``frames`` frames every ``sampling_rate`` frames, ``size`` pixels
    square, normalised with ``mean`` and ``std`` (per RGB channel, on a [0, 1] scale). For evaluation the short
    side is resized to ``eval_resize`` before the ``size`` crops (the training clips' smallest scale; None
    means ``size``: the crop spans the short side)."""

    frames: int
    sampling_rate: int
    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    eval_resize: int | None = None


def build_model(spec: ModelSpec, num_classes: int) -> nn.Module:
    """A freshly initialised network: ``models.create_model(spec.name, num_classes=num_classes, ...)``."""
    return create_model(
        spec.name,
        num_classes=num_classes,
        attention=spec.attention,
        attention_kwargs=dict(spec.attention_kwargs) or None,
        **spec.options,
    )


def make_info(
    class_names: list[str],
    model: ModelSpec,
    clip: ClipSpec,
    config: dict[str, Any],
    history: list[dict[str, float]],
    *,
    multi_label: bool = False,
) -> dict[str, Any]:
    """The info dict stored under ``checkpoint["cbam3d"]`` (see the module docstring)."""
    clip_dict = asdict(clip)
    clip_dict["mean"], clip_dict["std"] = list(clip.mean), list(clip.std)
    clip_dict["eval_resize"] = clip.eval_resize or clip.size
    return {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "class_names": list(class_names),
        "model": asdict(model),
        "clip": clip_dict,
        "config": dict(config),
        "history": [dict(entry) for entry in history],
        "multi_label": multi_label,
    }


def is_multi_label(info: dict[str, Any]) -> bool:
    """Whether a checkpoint's network gives one sigmoid per class (multi-label) rather than a softmax; checkpoints
    from before multi-label training have no ``multi_label`` and are single-label."""
    return bool(info.get("multi_label", False))


def _torch_load(path: str | os.PathLike, map_location: Any) -> Any:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path}: no such file")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:  # torch's message (several lines) suggests the unsafe loader
        raise ValueError(
            f"checkpoint {path} could not be read as a torch checkpoint: it is not a torch file, or it holds "
            "objects other than tensors and plain containers (which are not unpickled, for safety)"
        ) from error
    except Exception as error:  # a truncated file, not a torch file at all
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise ValueError(f"checkpoint {path} could not be read as a torch checkpoint: {reason}") from error


def read_checkpoint_info(checkpoint: dict[str, Any], path: str | os.PathLike = "<checkpoint>") -> dict[str, Any]:
    """The info dict of a loaded checkpoint.

    Raises:
        ValueError: if ``checkpoint`` was not written by cbam3d's training (it then lacks class names,
            model and clip settings).
    """
    info = checkpoint.get("cbam3d") if isinstance(checkpoint, dict) else None
    if not isinstance(info, dict) or info.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(
            f"{path} is not a cbam3d training checkpoint (no 'cbam3d' info with class names, model and clip "
            "settings); use a .ckpt written by cbam3d train"
        )
    _check_info_fields(info, path)
    return info


def _check_info_fields(info: dict[str, Any], path: str | os.PathLike) -> None:
    """Raise ValueError (one line) when the info's class names, model or clip settings are missing or
    malformed, rather than a KeyError or TypeError later."""
    names = info.get("class_names")
    if not isinstance(names, list) or not names or not all(isinstance(name, str) for name in names):
        raise ValueError(f"checkpoint {path}: its class_names are missing or not a list of names")
    for key, spec_type in (("model", ModelSpec), ("clip", ClipSpec)):
        settings = info.get(key)
        expected = {f.name for f in fields(spec_type)}
        required = {f.name for f in fields(spec_type) if f.default is MISSING and f.default_factory is MISSING}
        if not isinstance(settings, dict) or not required <= set(settings) or not set(settings) <= expected:
            raise ValueError(
                f"checkpoint {path}: its {key} settings {settings!r} are not the expected fields "
                f"({', '.join(sorted(expected))})"
            )
    if not isinstance(info.get("config", {}), dict):
        raise ValueError(f"checkpoint {path}: its config is not a dict of settings")
    if not isinstance(info.get("multi_label", False), bool):
        raise ValueError(f"checkpoint {path}: its multi_label is not true or false")


def unwrap_model_keys(state: dict[str, torch.Tensor], *, keep_others: bool = False) -> dict[str, torch.Tensor]:
    """``state`` with the LightningModule's ``model.`` prefix taken off its keys; keys without the prefix
    are kept as they are with ``keep_others``, else dropped."""
    return {
        key.removeprefix(MODEL_PREFIX): value
        for key, value in state.items()
        if keep_others or key.startswith(MODEL_PREFIX)
    }


def model_state_dict(checkpoint: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The network's weights in a training checkpoint, without the LightningModule's ``model.`` prefix."""
    return unwrap_model_keys(checkpoint.get("state_dict", checkpoint))


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the trained network of a cbam3d training checkpoint.

    Args:
        path: a ``.ckpt`` written by ``cbam3d train`` (``last.ckpt`` or a best one).
        map_location: where the weights go, as for ``torch.load``.

    Returns:
        ``(model, info)``: the network in eval mode with its trained weights (it takes (N, C, T, H, W) clips
        normalised as ``info["clip"]`` says and returns (N, len(info["class_names"])) logits), and the info
        dict described in this module's docstring.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        ValueError: if it is not a readable cbam3d training checkpoint.
    """
    checkpoint = _torch_load(path, map_location)
    info = read_checkpoint_info(checkpoint, path)
    spec = ModelSpec(**info["model"])
    try:
        model = build_model(spec, num_classes=len(info["class_names"]))
    except (TypeError, ValueError, KeyError) as error:
        raise ValueError(f"checkpoint {path}: its model settings cannot build a network: {error}") from error
    try:
        model.load_state_dict(model_state_dict(checkpoint), strict=True)
    except RuntimeError as error:
        first = str(error).strip().splitlines()[1:2] or [str(error)]
        raise ValueError(
            f"checkpoint {path}: its weights do not fit its stored settings ({spec.name}, attention "
            f"{spec.attention}, {len(info['class_names'])} classes): {first[0].strip()}"
        ) from error
    if map_location is not None and not callable(map_location) and not isinstance(map_location, dict):
        model.to(map_location)
    return model.eval(), info
