"""Key mapping between torchvision's video ResNets and this package's ``r3d_18``/``mc3_18``/``r2plus1d_18``.

The architectures are identical; only names differ. torchvision nests each conv and its BatchNorm in
``nn.Sequential`` containers (``stem.0``, ``layer1.0.conv1.0``, ``layer1.0.conv1.1``; for (2+1)D one
level deeper, ``layer1.0.conv1.0.0``), while this package uses the flat names of the 3D-ResNet and
image ResNet code (``conv1``, ``bn1``, ``layer1.0.conv1``, ``layer1.0.bn1``, ``conv1_s`` ...). Keys
of attention modules added to either (``...attention.*``, ``bam1.*``), ``downsample.*`` and ``fc.*``
are the same on both sides.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from torch import Tensor

# (torchvision name, our name) prefixes; {L}, {B}, {K} stand for stage, block and conv numbers.
_COMMON = [
    ("layer{L}.{B}.downsample.", "layer{L}.{B}.downsample."),
    ("layer{L}.{B}.attention.", "layer{L}.{B}.attention."),
    ("bam{L}.", "bam{L}."),
    ("fc.", "fc."),
]
_RULES_3D = [
    ("stem.0.", "conv1."),
    ("stem.1.", "bn1."),
    ("layer{L}.{B}.conv{K}.0.", "layer{L}.{B}.conv{K}."),
    ("layer{L}.{B}.conv{K}.1.", "layer{L}.{B}.bn{K}."),
] + _COMMON
_RULES_2PLUS1D = [
    ("stem.0.", "conv1_s."),
    ("stem.1.", "bn1_s."),
    ("stem.3.", "conv1_t."),
    ("stem.4.", "bn1_t."),
    ("layer{L}.{B}.conv{K}.0.0.", "layer{L}.{B}.conv{K}_s."),
    ("layer{L}.{B}.conv{K}.0.1.", "layer{L}.{B}.bn{K}_s."),
    ("layer{L}.{B}.conv{K}.0.3.", "layer{L}.{B}.conv{K}_t."),
    ("layer{L}.{B}.conv{K}.1.", "layer{L}.{B}.bn{K}_t."),
] + _COMMON


def _compile(template: str) -> re.Pattern:
    pattern = re.escape(template)
    for field in "LBK":
        pattern = pattern.replace(re.escape("{" + field + "}"), f"(?P<{field}>\\d+)")
    return re.compile(pattern + "(?P<rest>.+)$")


def _translate(
    state_dict: Mapping[str, Tensor], rules: list[tuple[str, str]], source: int, what: str
) -> dict[str, Tensor]:
    compiled = [(_compile(pair[source]), pair[1 - source]) for pair in rules]
    converted, unknown = {}, []
    for key, value in state_dict.items():
        for pattern, target in compiled:
            match = pattern.match(key)
            if match:
                fields = {k: v for k, v in match.groupdict().items() if k != "rest"}
                converted[target.format(**fields) + match["rest"]] = value
                break
        else:
            unknown.append(key)
    if unknown:
        raise ValueError(f"{len(unknown)} keys are not those of {what}, e.g. {unknown[:5]}")
    return converted


def _check_mapping(state_dict: object) -> None:
    if not isinstance(state_dict, Mapping):
        raise TypeError(f"expected a state_dict (a mapping of names to tensors), got {type(state_dict).__name__}")


def _require(state_dict: Mapping[str, Tensor], keys: tuple[str, ...], what: str) -> None:
    _check_mapping(state_dict)
    missing = [key for key in keys if key not in state_dict]
    if missing:
        raise ValueError(f"not a state_dict of {what}: missing {missing}")


def from_torchvision(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Rename a torchvision ``r3d_18`` / ``mc3_18`` / ``r2plus1d_18`` state_dict to this package's names.

    ``models.r3d_18().load_state_dict(models.from_torchvision(tv.r3d_18(weights=...).state_dict()))``
    loads strictly and reproduces torchvision's logits. With attention, load with ``strict=False``:
    only the attention parameters are then missing. Tensors are shared, not copied.

    Raises:
        ValueError: the state_dict is not one of torchvision's video ResNets (for example a 2D
            ResNet's or one of this package's), naming the offending keys.
    """
    what = "a torchvision video ResNet (r3d_18, mc3_18, r2plus1d_18)"
    _require(state_dict, ("stem.0.weight", "stem.1.weight", "fc.weight"), what)
    rules = _RULES_2PLUS1D if "stem.3.weight" in state_dict else _RULES_3D
    return _translate(state_dict, rules, 0, what)


def to_torchvision(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Inverse of :func:`from_torchvision`: our ``r3d_18`` / ``mc3_18`` / ``r2plus1d_18`` names to torchvision's."""
    what = "this package's r3d_18, mc3_18 or r2plus1d_18"
    _check_mapping(state_dict)
    factorised = "conv1_s.weight" in state_dict
    _require(state_dict, ("conv1_s.weight" if factorised else "conv1.weight", "fc.weight"), what)
    return _translate(state_dict, _RULES_2PLUS1D if factorised else _RULES_3D, 1, what)
