"""What ``schedule_job`` is given, made a target: a target stays one, a
``"module:function"`` string becomes a :class:`FunctionRef`, and for a durable job a
function another process can import by name becomes one too (anything else is refused,
saying what can be durable)."""

from __future__ import annotations

import inspect
import types
from typing import Any

from .base import Target
from .function import FunctionRef

__all__ = ["as_target", "durable_target"]


def as_target(callback: object) -> Target | None:
    """The target ``callback`` names (a target, or a ``"module:function"`` string), or None
    for a plain callable (an in-kernel job's callback)."""
    if isinstance(callback, Target):
        return callback
    if isinstance(callback, str):
        if ":" not in callback:
            raise TypeError(
                f"callback must be callable, a target (Command, FunctionRef, Notebook) or a "
                f"'package.module:function' reference, got the string {callback!r}")
        return FunctionRef(callback)
    return None


def durable_target(callback: object) -> Target:
    """The target of a durable job: a target, a ``"module:function"`` string, or a
    function another process can import by name (made a :class:`FunctionRef`).

    Raises
    ------
    TypeError
        For a lambda, a closure, a bound method, a callable defined in ``__main__`` or a
        notebook, or anything else another process cannot name: it says what can be
        durable and how.
    """
    target = as_target(callback)
    if target is not None:
        return target
    why = _why_not_importable(callback)
    if why is None:
        function: Any = callback
        return FunctionRef(f"{function.__module__}:{function.__qualname__}")
    raise TypeError(
        f"a durable job's target must be something another process can name, and {why}: "
        f"give a 'package.module:function' reference (a function in an importable module), "
        f"a Command([...]) or a Notebook('path.ipynb')")


def _why_not_importable(callback: object) -> str | None:
    name = repr(getattr(callback, "__qualname__", callback))
    if isinstance(callback, types.MethodType):
        return f"{name} is a bound method"
    if not inspect.isfunction(callback) and not inspect.isbuiltin(callback):
        return f"{name} is a {type(callback).__name__}, not a function"
    qualname = getattr(callback, "__qualname__", "")
    if qualname == "<lambda>" or qualname.endswith(".<lambda>"):
        return f"{name} is a lambda"
    if "<locals>" in qualname:
        return f"{name} is defined inside another function (a closure)"
    module = getattr(callback, "__module__", None)
    if module in (None, "__main__") or str(module).startswith("__"):
        return (f"{name} is defined in {module or 'no module'} (a notebook or a script), "
                f"which another process cannot import")
    return None
