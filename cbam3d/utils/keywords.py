"""Keyword options given as text (``--model-option KEY=VALUE``) in the types their target declares.

A command line reads ``no_max_pool=false`` as the text ``'false'``, which Python takes as true. The target's
signature says which parameters are booleans; their values are read as booleans here, or refused.

>>> def build(*, no_max_pool: bool = False, width: int = 8): ...
>>> typed_keywords(build, {"no_max_pool": "false", "width": 4}, flag="--model-option")
{'no_max_pool': False, 'width': 4}
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Mapping
from typing import Any

from .errors import UsageError

__all__ = ["BOOLEAN_WORDS", "typed_keywords"]

BOOLEAN_WORDS: Mapping[str, bool] = {
    "true": True, "yes": True, "on": True, "1": True,
    "false": False, "no": False, "off": False, "0": False,
}  # fmt: skip
"""The words a boolean option may be given as, in any case."""


def _is_boolean(annotation: Any) -> bool:
    """Whether a parameter annotated ``annotation`` takes a boolean (``bool``, ``bool | None``, as text too)."""
    if isinstance(annotation, str):
        return annotation.replace(" ", "") in ("bool", "bool|None", "None|bool", "Optional[bool]")
    if annotation is bool:
        return True
    arguments = set(typing.get_args(annotation))
    return bool(arguments) and arguments <= {bool, type(None)} and bool in arguments


def _parameters(target: Callable[..., Any]) -> Mapping[str, inspect.Parameter]:
    try:
        return inspect.signature(target, eval_str=True).parameters
    except NameError:  # an annotation that does not evaluate in the target's module: read them as text
        return inspect.signature(target).parameters
    except (TypeError, ValueError):  # a callable without a signature (a builtin): nothing to type
        return {}


def _boolean(value: Any, *, key: str, flag: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    word = str(value).strip().lower() if isinstance(value, (str, int)) else None
    if word not in BOOLEAN_WORDS:
        raise UsageError(f"{flag} {key}={value!r}: {key} is a boolean; expected true/false, yes/no, on/off or 1/0")
    return BOOLEAN_WORDS[word]


def typed_keywords(target: Callable[..., Any], options: Mapping[str, Any], *, flag: str) -> dict[str, Any]:
    """``options`` with the values of ``target``'s boolean parameters read as booleans.

    Args:
        target: the function or class the options are passed to.
        options: keyword options as a command line parsed them (text, or Python literals).
        flag: the flag that gave them, for the message.

    Returns:
        A new dict: ``"false"``, ``"No"``, ``0`` ... as ``False`` and ``"true"``, ``"YES"``, ``1`` ... as ``True``
        where ``target`` declares a ``bool``; every other value as given.

    Raises:
        UsageError: a boolean parameter given anything else (``"maybe"``, ``2``), naming the flag and key.
    """
    parameters = _parameters(target)
    typed = dict(options)
    for key, value in options.items():
        parameter = parameters.get(key)
        if parameter is not None and _is_boolean(parameter.annotation):
            typed[key] = _boolean(value, key=key, flag=flag)
    return typed
