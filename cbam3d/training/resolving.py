"""Resolving a run's settings: :func:`resolve_config` fills what was not given and checks every value; and the
checks that need the accelerator (:func:`check_precision_fits`). The settings are declared in
:mod:`cbam3d.training.settings`, which re-exports these."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any, TypeVar

from cbam3d.attention.registry import get_attention
from cbam3d.models import model_builder
from cbam3d.utils.errors import UsageError
from cbam3d.utils.keywords import typed_keywords

from .declaration import DeclaredSetting, Depends, declared_settings

__all__ = ["REDUCED_PRECISIONS", "check_precision_fits", "demo_set", "resolve_config", "setting_named"]

REDUCED_PRECISIONS = ("bf16-mixed", "16-mixed", "bf16-true", "16-true")
Config = TypeVar("Config")  # a dataclass of declared settings: cbam3d.training.settings.TrainConfig


def setting_named(config_class: type, name: str) -> DeclaredSetting:
    """The declared setting ``name`` of ``config_class``."""
    return next(declared for declared in declared_settings(config_class) if declared.name == name)


def demo_set(data: Path | None, demo: str | None) -> str | None:
    """Which defaults apply: None on a real data set (``--data``), else the demo set's name."""
    if data is not None:
        return None
    return "hard" if demo == "hard" else "standard"


# --- resolving ----------------------------------------------------------------------------------------------


def resolve_config(config: Config, resumed: dict[str, Any] | None = None) -> Config:
    """Fill every ``None`` of ``config`` and check the values.

    Args:
        config: the settings given (``None`` for those not given).
        resumed: the ``config`` dict stored in the checkpoint of the run being resumed, if any; its settings
            that are ``kept_on_resume`` are used for those not given, so an interrupted run continues as it
            was started.

    Raises:
        UsageError: on a value out of range or of an unknown name, naming its flag.
    """
    settings = declared_settings(type(config))
    values = {s.name: getattr(config, s.name) for s in settings}
    for declared in settings:
        if resumed and declared.declaration.kept_on_resume and values[declared.name] is None:
            values[declared.name] = resumed.get(declared.name)
    defaults_of = demo_set(values["data"], values["demo"])
    for declared in settings:
        if values[declared.name] is None:
            values[declared.name] = copy.deepcopy(declared.declaration.default(defaults_of))
    for declared in settings:
        value = values[declared.name]
        values[declared.name] = declared.normalised(value.pick(values) if isinstance(value, Depends) else value)
    resolved = dataclasses.replace(config, **values)
    for declared in settings:
        value = getattr(resolved, declared.name)
        problem = None if value is None else declared.problem(value)
        if problem is not None:
            raise UsageError(problem)
    if resolved.batch_size % resolved.clips_per_decode:
        raise UsageError(
            f"--batch-size {resolved.batch_size} must be a multiple of --clips-per-decode {resolved.clips_per_decode}"
        )
    if resolved.class_balanced and resolved.multi_label:
        raise UsageError("--class-balanced draws by the single label of each video: leave it out with --multi-label")
    if (resolved.mixup or resolved.cutmix) and resolved.multi_label:
        raise UsageError("--mixup and --cutmix mix single-label targets: leave them out with --multi-label")
    if config.augment_magnitude is not None and resolved.augment != "randaugment":
        raise UsageError(f"--augment-magnitude applies to --augment randaugment only, not --augment {resolved.augment}")
    if resolved.data is not None and resolved.demo != "standard":
        raise UsageError(f"--demo {resolved.demo} chooses a generated demo set: leave out --data, or leave out --demo")
    return _typed_network_options(resolved)


def _typed_network_options(config: Config) -> Config:
    """``config`` with the boolean ``--model-option`` / ``--attention-option`` values (``false``, ``1``) as bools."""
    flag = type(config).flag
    model_options = typed_keywords(model_builder(config.model), config.model_options, flag=flag("model_options"))
    attention_kwargs = config.attention_kwargs
    if config.attention != "none":
        builder = get_attention(config.attention).builder
        attention_kwargs = typed_keywords(builder, attention_kwargs, flag=flag("attention_kwargs"))
    return dataclasses.replace(config, model_options=model_options, attention_kwargs=attention_kwargs)


def check_precision_fits(precision: str, accelerator: str) -> None:
    """Refuse reduced precision on a CPU, where torch's fp16 / bf16 3D convolution backward hangs or crashes.

    Raises:
        UsageError: ``precision`` is a 16-bit one and ``accelerator`` is ``"cpu"``.
    """
    if accelerator == "cpu" and precision in REDUCED_PRECISIONS:
        raise UsageError(
            f"--precision {precision} does not run on the CPU (torch's 16-bit 3D convolutions hang or crash "
            "there): use --precision 32-true (or auto), or train on a GPU"
        )
