"""How a setting is declared (:func:`setting`, :class:`Setting`, :class:`Depends`, the checks) and what a
declaration makes: its flag, help text and value (:class:`DeclaredSetting`).

The settings themselves are declared in :mod:`cbam3d.training.settings`.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import functools
import math
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "Check",
    "DeclaredSetting",
    "Depends",
    "Setting",
    "at_least_zero",
    "declared_settings",
    "existing_file",
    "existing_folder",
    "finite",
    "literal_or_text",
    "positive",
    "positive_integer",
    "probability",
    "setting",
    "zero_or_positive_integer",
]


def literal_or_text(text: str) -> Any:
    """``text`` read as a Python literal when it is one (``3``, ``0.5``, ``True``, ``(3, 7, 7)``), else as is."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _key_value(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` with VALUE read by :func:`literal_or_text`."""
    key, sep, value = text.partition("=")
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE with KEY a Python name, got {text!r}")
    return key, literal_or_text(value)


# --- checks: each returns what is wrong with a value (the message after the flag), or None ---------------------

Check = Callable[[Any], "str | None"]


def positive_integer(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        return f"must be a positive integer, got {value!r}"
    return None


def finite(value: Any) -> str | None:
    """inf and nan pass range checks written as comparisons (``inf > 0``): put this check first."""
    if not all(math.isfinite(v) for v in (value if isinstance(value, tuple) else (value,))):
        return f"must be a finite number, got {value!r}"
    return None


def positive(value: Any) -> str | None:
    return None if value > 0 else f"must be positive, got {value}"


def at_least_zero(value: Any) -> str | None:
    return None if value >= 0 else f"must be 0 or more, got {value}"


def probability(value: Any) -> str | None:
    return None if 0.0 <= value <= 1.0 else f"must be a probability in [0, 1], got {value}"


def zero_or_positive_integer(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return f"must be 0 (off) or a positive integer, got {value!r}"
    return None


def existing_folder(path: Path) -> str | None:
    return None if path.is_dir() else f"{path}: no such directory"


def existing_file(path: Path) -> str | None:
    return None if path.is_file() else f"{path}: no such file"


# --- the declaration ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Depends:
    """A default that depends on another setting's value: ``Depends("optimizer", {"sgd": 0.05, "adamw": 1e-3})``."""

    on: str  # the other setting
    values: dict[str, Any]  # the default for each of its values

    def pick(self, settings: Mapping[str, Any]) -> Any:
        """The value for ``settings[on]`` (None for a value it does not name: that setting's check says so)."""
        return self.values.get(settings[self.on])


@dataclass(frozen=True, kw_only=True)
class Setting:
    """One setting's declaration (see :mod:`cbam3d.training.settings`); :func:`setting` makes it a field."""

    group: str  # the argument group of the flag in ``cbam3d train --help``
    help: str | Callable[[], str]  # a function for a text made from other declarations
    general: Any = None  # the default for a real data set (None: none)
    demo: Any = None  # the default on the demo sets, where it differs
    hard_demo: Any = None  # the default on the hard demo set, where it differs from the demo sets'
    default_text: str | None = None  # the general default in words, where its value does not say it
    flag: str | None = None  # default: --name-with-dashes
    metavar: str | tuple[str, ...] | None = None
    choices: Sequence[Any] | Mapping[str, Any] | Callable[[], Sequence[Any]] | None = None
    const: Any = None  # the value of the flag given without one; None: the flag takes a value
    checks: tuple[Check, ...] = ()  # in order: the first problem found is reported
    kept_on_resume: bool = True  # a resumed run keeps its own value unless it is given again

    def default(self, demo_set: str | None) -> Any:
        """The default on a real data set (``demo_set`` None), on the ``"standard"`` or the ``"hard"`` demo set."""
        if demo_set == "hard" and self.hard_demo is not None:
            return self.hard_demo
        if demo_set is not None and self.demo is not None:
            return self.demo
        return self.general

    def allowed(self) -> Sequence[Any] | Mapping[str, Any] | None:
        """The choices, read now (the registered attentions can change after import)."""
        return self.choices() if callable(self.choices) else self.choices


_KEY = "setting"  # where a field's metadata holds its declaration


def setting(group: str, help: str | Callable[[], str], **declaration: Any) -> Any:
    """A dataclass field that is a setting: ``None`` ("not given") by default, declared by :class:`Setting`'s
    arguments (``group``, ``help``, then keywords)."""
    return field(default=None, metadata={_KEY: Setting(group=group, help=help, **declaration)})


# --- what the declarations make ------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeclaredSetting:
    """A setting as declared on its config class: its field name, flag, declaration and value type."""

    name: str
    flag: str
    declaration: Setting
    value_type: Any  # the annotation without None: int, Path, tuple[float, float], dict[str, Any], ...

    def argument_options(self) -> dict[str, Any]:
        """The keyword arguments of ``add_argument`` for this setting's flag."""
        declared = self.declaration
        options: dict[str, Any] = dict(dest=self.name, default=None, help=self.help_text())
        choices = declared.allowed()
        if choices is not None:
            options["choices"] = tuple(choices)
        elif self.value_type is bool:
            options["action"] = "store_true"
        elif typing.get_origin(self.value_type) is dict:
            options.update(type=_key_value, action="append")
        elif typing.get_origin(self.value_type) is tuple:
            element_types = typing.get_args(self.value_type)
            options.update(type=element_types[0], nargs=len(element_types))
        else:
            options["type"] = self.value_type
        if declared.const is not None:
            options.update(nargs="?", const=declared.const)
        if declared.metavar is not None:
            options["metavar"] = declared.metavar
        return options

    def from_flag(self, value: Any) -> Any:
        """The setting's value of what its flag parsed to (a flag's word, a list of values, KEY=VALUE pairs)."""
        if value is None:
            return None
        if isinstance(self.declaration.choices, Mapping):
            return self.declaration.choices[value]
        origin = typing.get_origin(self.value_type)
        return dict(value) if origin is dict else tuple(value) if origin is tuple else value

    def normalised(self, value: Any) -> Any:
        """``value`` in the setting's type where it came as text or a list (a checkpoint's JSON, a caller's str)."""
        if value is None or isinstance(value, bool):
            return value
        if self.value_type is Path:
            return Path(value).expanduser()
        if typing.get_origin(self.value_type) is tuple:
            return tuple(kind(v) for kind, v in zip(typing.get_args(self.value_type), value))
        return value

    def problem(self, value: Any) -> str | None:
        """The first problem the setting's choices and checks find with ``value``, flag first; None if none."""
        choices = self.declaration.allowed()
        allowed = choices.values() if isinstance(choices, Mapping) else choices
        if choices is not None and value not in allowed:
            return f"{self.flag} must be one of {', '.join(choices)}, got {value!r}"
        for check in self.declaration.checks:
            problem = check(value)
            if problem is not None:
                return f"{self.flag} {problem}"
        return None

    def help_text(self) -> str:
        """The declared help followed by the defaults: ``"frames per clip; default: 16; 8 on the demo set"``."""
        declared = self.declaration
        text = declared.help() if callable(declared.help) else declared.help
        if declared.default_text is not None:
            general = declared.default_text
        elif isinstance(declared.choices, Mapping):
            general = next(word for word, value in declared.choices.items() if value == declared.general)
        elif declared.general is None or isinstance(declared.general, bool):
            return text  # no default to show, or a switch
        else:
            general = _shown(declared.general)
        defaults = [f"default: {general}"]
        if declared.demo is not None:
            defaults.append(f"{_shown(declared.demo)} on the demo set")
        if declared.hard_demo is not None:
            defaults.append(f"{_shown(declared.hard_demo)} on the hard demo set")
        return "; ".join([text, *defaults])


@functools.cache
def declared_settings(config_class: type) -> tuple[DeclaredSetting, ...]:
    """Every field of ``config_class`` made by :func:`setting`, in declaration order (the order of ``--help``)."""
    hints = typing.get_type_hints(config_class)
    return tuple(
        DeclaredSetting(
            name=f.name,
            flag=f.metadata[_KEY].flag or f"--{f.name.replace('_', '-')}",
            declaration=f.metadata[_KEY],
            value_type=_value_type(hints[f.name]),
        )
        for f in dataclasses.fields(config_class)
        if _KEY in f.metadata
    )


def _value_type(annotation: Any) -> Any:
    """The annotation without None, and without bool where another type is left (``bool | Path``: a value
    given is a Path, ``True`` is the flag's const)."""
    is_union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
    members = [t for t in typing.get_args(annotation) if t is not type(None)] if is_union else [annotation]
    return next((t for t in members if t is not bool), bool)


def _shown(value: Any) -> str:
    """A default as the help text shows it."""
    if isinstance(value, Depends):
        return ", ".join(f"{v} with {word}" for word, v in value.values.items())
    if isinstance(value, dict):
        return " ".join(f"{k}={v}" for k, v in value.items()) or "none"
    if isinstance(value, tuple):
        return " ".join(f"{v:.3g}" for v in value)
    return str(value)
