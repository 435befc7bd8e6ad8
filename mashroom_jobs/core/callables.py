"""What kind of callable a job's callback is, read once when the job is scheduled.

A callback takes the :class:`~mashroom_jobs.PluginContext` as its one required
positional parameter, or no required parameter at all (``lambda i=i: print(i)``,
the loop idiom, is called with no argument).  It may be a coroutine function.
Generator functions, sync or async, are refused: calling one runs nothing.
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Callable
from typing import Any, NamedTuple

__all__ = ["CallbackKind", "inspect_callback"]


class CallbackKind(NamedTuple):
    """How to call a callback: with the context or not; awaited or not."""

    takes_context: bool
    is_async: bool


# the four kinds there are, shared by every job (one object fewer per job for the collector)
_KINDS = {(context, is_async): CallbackKind(context, is_async)
          for context in (False, True) for is_async in (False, True)}


def _name(callback: Callable[..., Any]) -> str:
    return repr(getattr(callback, "__qualname__", callback))


def inspect_callback(callback: Callable[..., Any]) -> CallbackKind:
    """Read how ``callback`` must be called.

    Raises
    ------
    TypeError
        When it is not callable, is a (async) generator function, or needs more than
        one argument.
    """
    if not callable(callback):
        raise TypeError(f"callback must be callable, got {type(callback).__name__}")
    code = getattr(callback, "__code__", None)
    if (type(callback) is types.FunctionType and code is not None
            and "_is_coroutine_marker" not in callback.__dict__
            and not hasattr(callback, "__wrapped__") and not hasattr(callback, "__signature__")):
        # A plain function: its code object says everything (inspect.signature costs ~20 µs,
        # and set-up of 10,000 jobs is measured).
        flags = code.co_flags
        if flags & (inspect.CO_GENERATOR | inspect.CO_ASYNC_GENERATOR):
            raise _generator_error(callback, bool(flags & inspect.CO_ASYNC_GENERATOR))
        positional = code.co_argcount
        required = positional - len(callback.__defaults__ or ())
        kwonly = code.co_varnames[positional:positional + code.co_kwonlyargcount]
        kwdefaults = callback.__kwdefaults__ or {}
        if required <= 1 and all(k in kwdefaults for k in kwonly):
            return _KINDS[required == 1, bool(flags & inspect.CO_COROUTINE)]
    return _KINDS[_takes_context(callback), _is_async(callback)]


def _generator_error(callback: Callable[..., Any], is_async: bool) -> TypeError:
    kind = "an async generator function" if is_async else "a generator function"
    return TypeError(
        f"callback {_name(callback)} is {kind}: calling it runs nothing until it is "
        f"iterated; schedule a function (or async def without yield) instead"
    )


def _is_async(callback: Callable[..., Any]) -> bool:
    for candidate in (callback, getattr(callback, "__call__", None)):  # noqa: B004
        if candidate is None:
            continue
        if inspect.isasyncgenfunction(candidate):
            raise _generator_error(callback, True)
        if inspect.isgeneratorfunction(candidate):
            raise _generator_error(callback, False)
        if inspect.iscoroutinefunction(candidate):
            return True
    return False


def _takes_context(callback: Callable[..., Any]) -> bool:
    try:
        signature = inspect.signature(callback)
    except (TypeError, ValueError):  # builtins without a signature: call without arguments
        return False
    params = signature.parameters.values()
    required = [
        p for p in params
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        and p.default is inspect.Parameter.empty
    ]
    required_kw = [
        p for p in params
        if p.kind is inspect.Parameter.KEYWORD_ONLY and p.default is inspect.Parameter.empty
    ]
    if len(required) > 1 or required_kw:
        raise TypeError(
            f"callback {_name(callback)} must take the PluginContext as its only required "
            f"argument, or no required argument; its signature is {signature}"
        )
    return len(required) == 1
