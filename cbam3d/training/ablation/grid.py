"""The grid of an ablation: its runs (:class:`GridRun`), how ``--attention``, ``--vary``, ``--recipe`` and
``--seeds`` expand into them (:func:`expand_grid`), the checks of ``--vary``, ``--recipe`` (:func:`parse_recipe`)
and grid files (:func:`read_grid_file`)."""

from __future__ import annotations

import inspect
import json
import re
import reprlib
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cbam3d.attention.registry import ATTENTION, attention_names, create_attention

__all__ = [
    "MAX_GRID_RUNS",
    "MAX_GRID_VALUES",
    "GridRun",
    "Recipe",
    "check_vary",
    "expand_grid",
    "parse_recipe",
    "read_grid_file",
    "shown",
]

MAX_GRID_RUNS = 1000
"""The most runs a grid may expand to (configurations x seeds)."""
MAX_GRID_VALUES = 10_000
"""The most values (names, numbers, strings, lists: every node) a grid file may hold, counted as expanded: YAML
aliases can make a file of a few hundred bytes stand for billions of values."""

_SHOWN = reprlib.Repr()  # its limits are attributes (keywords only from Python 3.12)
_SHOWN.maxlevel, _SHOWN.maxlist, _SHOWN.maxdict, _SHOWN.maxstring, _SHOWN.maxother = 3, 6, 6, 60, 60


def shown(value: Any) -> str:
    """``repr(value)``, cut to a line's length: what messages quote of a grid's values."""
    return _SHOWN.repr(value)


@dataclass(frozen=True)
class Recipe:
    """A named set of train options, e.g. ``strong``: ``--augment randaugment --mixup 0.8``."""

    name: str
    options: tuple[str, ...] = ()


def parse_recipe(text: str) -> Recipe:
    """``NAME=OPTIONS`` (OPTIONS split as a shell would, may be empty) -> :class:`Recipe`.

    Raises:
        ValueError: no ``=``, a name that is not a word, or unbalanced quotes.
    """
    name, sep, options = text.partition("=")
    if not sep or not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ValueError(f"expected NAME=OPTIONS with NAME of letters, digits, _ . -, got {text!r}")
    try:
        return Recipe(name, tuple(shlex.split(options)))
    except ValueError as error:
        raise ValueError(f"{name}: cannot split {options!r}: {error}") from error


@dataclass(frozen=True)
class GridRun:
    """One run of the grid: an attention (``"none"`` for the baseline), its options, a seed and the recipe (train
    options; none when the grid compares no recipes)."""

    attention: str
    options: tuple[tuple[str, Any], ...]
    seed: int
    recipe: Recipe | None = None

    @property
    def configuration(self) -> str:
        """The configuration's label, e.g. ``cbam``, ``cbam gate_order=parallel`` or ``cbam recipe=strong``."""
        recipe = [f"recipe={self.recipe.name}"] if self.recipe is not None else []
        return " ".join([self.attention, *(f"{key}={value}" for key, value in self.options), *recipe])

    @property
    def folder(self) -> str:
        """The run's folder name: the configuration and the seed, in file-name-safe characters."""
        return re.sub(r"[^A-Za-z0-9_.=-]+", "_", f"{self.configuration.replace(' ', '-')}-seed{self.seed}")

    def train_arguments(self) -> list[str]:
        """The train command's options that make this run (besides those common to the grid)."""
        arguments = ["--attention", self.attention, "--seed", str(self.seed)]
        for key, value in self.options:
            arguments += ["--attention-option", f"{key}={value!r}"]
        return arguments + list(self.recipe.options if self.recipe is not None else ())


def _option_default(attention: str, option: str) -> Any:
    parameter = inspect.signature(ATTENTION[attention].builder).parameters.get(option)
    return inspect.Parameter.empty if parameter is None else parameter.default


def check_vary(key: str, values: Sequence[Any]) -> str | None:
    """None if ``key`` is ``ATTENTION.OPTION`` and every value builds the attention, else a one-line description
    of what is wrong (to follow ``--vary``)."""
    attention, dot, option = key.partition(".")
    if not dot:
        return f"expected ATTENTION.OPTION, e.g. cbam.gate_order, got {shown(key)}"
    if attention not in ATTENTION:
        return f"unknown attention {shown(attention)} in {shown(key)}: expected one of {', '.join(attention_names())}"
    if not option.isidentifier():
        return f"{shown(key)}: the option must be a Python name"
    if not values:
        return f"{key}: give at least one value"
    for value in values:
        try:
            create_attention(attention, None, dims=3, **{option: value})
        except (TypeError, ValueError) as error:
            return f"{key} {shown(value)}: {error}"
    return None


def expand_grid(
    attentions: Sequence[str], vary: dict[str, list[Any]], seeds: Sequence[int], recipes: Sequence[Recipe] = ()
) -> list[GridRun]:
    """Every run of the grid, configurations in the order given, each with all its seeds; duplicates once.

    ``vary`` changes one option at a time around the defaults (not a cross product); a value equal to the
    option's default is the plain configuration again. Each configuration is trained with each of ``recipes``
    (a cross product), or once with the common options when there are none.
    """
    configurations: list[tuple[str, tuple[tuple[str, Any], ...]]] = [(name, ()) for name in attentions]
    for key, values in vary.items():
        attention, _, option = key.partition(".")
        for value in values:
            same_as_plain = value == _option_default(attention, option)
            configurations.append((attention, () if same_as_plain else ((option, value),)))
    unique = list(dict.fromkeys(configurations))
    return [
        GridRun(attention, options, seed, recipe)
        for attention, options in unique
        for recipe in (recipes or [None])
        for seed in seeds
    ]


def _exceeds(content: Any, budget: int) -> bool:
    """Whether ``content`` (nested lists and mappings) holds more than ``budget`` values, a shared one counted
    each time it appears; stops counting at the budget, so a nest of aliases costs no more than that."""
    pending = [content]
    while pending:
        budget -= 1
        if budget < 0:
            return True
        value = pending.pop()
        if isinstance(value, dict):
            pending += [*value.keys(), *value.values()]
        elif isinstance(value, list | tuple | set):
            pending += list(value)
    return False


def read_grid_file(path: Path) -> dict[str, Any]:
    """A grid file's ``attention`` (list), ``vary`` (``{"ATTENTION.OPTION": [values]}``), ``seeds`` (list) and
    ``recipe`` (a list of ``"NAME=OPTIONS"``, as ``--recipe`` takes them).

    JSON, or YAML for ``.yaml``/``.yml`` files; every key is optional.

    Raises:
        ValueError: an unreadable file, an unknown key or a value of the wrong type.
    """
    try:
        text = path.read_text()
    except OSError as error:
        raise ValueError(f"cannot read {path}: {error.strerror or error}") from error
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            # Deferred: PyYAML is an optional dependency that only YAML grid files need.
            import yaml

            content = yaml.safe_load(text)
        else:
            content = json.loads(text)
    except ImportError as error:
        raise ValueError(
            f"{path}: reading YAML needs PyYAML (pip install pyyaml), or write the grid as JSON"
        ) from error
    except Exception as error:  # json.JSONDecodeError or yaml.YAMLError: both a malformed file
        first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ValueError(f"{path} is not valid {path.suffix.lstrip('.') or 'JSON'}: {first_line}") from error
    if _exceeds(content, MAX_GRID_VALUES):
        raise ValueError(f"{path}: the grid holds more than {MAX_GRID_VALUES} values (counting what aliases repeat)")
    if not isinstance(content, dict):
        raise ValueError(
            f"{path}: expected a mapping with keys attention, vary, seeds, recipe; got {type(content).__name__}"
        )
    unknown = sorted(set(content) - {"attention", "vary", "seeds", "recipe"})
    if unknown:
        raise ValueError(f"{path}: unknown keys {unknown}; expected attention, vary, seeds, recipe")
    attention, vary, seeds = content.get("attention", []), content.get("vary", {}), content.get("seeds", [])
    if not isinstance(attention, list) or not all(isinstance(a, str) for a in attention):
        raise ValueError(f"{path}: attention must be a list of names, got {shown(attention)}")
    if not isinstance(vary, dict) or not all(isinstance(v, list) for v in vary.values()):
        raise ValueError(f"{path}: vary must map ATTENTION.OPTION to a list of values, got {shown(vary)}")
    if not isinstance(seeds, list) or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise ValueError(f"{path}: seeds must be a list of integers, got {shown(seeds)}")
    recipe = content.get("recipe", [])
    if not isinstance(recipe, list) or not all(isinstance(r, str) for r in recipe):
        raise ValueError(f"{path}: recipe must be a list of NAME=OPTIONS texts, got {shown(recipe)}")
    return {"attention": attention, "vary": vary, "seeds": seeds, "recipe": recipe}
