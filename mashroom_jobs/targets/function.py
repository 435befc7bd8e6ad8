"""A reference to an importable function, ``"package.module:function"``, with JSON arguments.

The function is imported when the target is resolved (in whichever process runs the job),
and called with its ``args`` and ``kwargs``; a function with a parameter named ``context``
also gets the job's :class:`~mashroom_jobs.PluginContext` by that name.  A coroutine
function is awaited.
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from ..core.errors import TargetError, TargetUnavailableError
from ..core.records import error_text
from .base import TargetData, check_json, register_kind

__all__ = ["FunctionRef"]

_REFERENCE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


class FunctionRef:
    """The function ``reference`` names (``"package.module:function"``; the part after the
    colon may be dotted: ``"pkg.mod:Class.method"``), called with ``args`` and ``kwargs``.

    Raises
    ------
    TargetError
        When ``reference`` is not of that form, or the arguments are not JSON.
    """

    kind: ClassVar[str] = "function"

    def __init__(self, reference: str, args: Sequence[Any] = (),
                 kwargs: Mapping[str, Any] | None = None) -> None:
        if not isinstance(reference, str) or not _REFERENCE.match(reference):
            raise TargetError(
                f"a function reference is 'package.module:function', got {reference!r}")
        self.reference = reference
        self.args: list[Any] = check_json(list(args), "args")
        self.kwargs: dict[str, Any] = check_json(dict(kwargs or {}), "kwargs")

    def to_data(self) -> TargetData:
        return {"kind": self.kind, "ref": self.reference, "args": self.args,
                "kwargs": self.kwargs}

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> FunctionRef:
        return cls(data.get("ref"), data.get("args") or (),  # type: ignore[arg-type]
                   data.get("kwargs") or {})

    def describe(self) -> str:
        return self.reference

    def find(self) -> Callable[..., Any]:
        """Import the module and find the function.

        Raises
        ------
        TargetUnavailableError
            When the module cannot be imported or has no such function.
        """
        module_name, _, path = self.reference.partition(":")
        try:
            obj: Any = importlib.import_module(module_name)
        except Exception as exc:  # ImportError, or the module raised while importing
            raise TargetUnavailableError(
                f"cannot import {module_name!r} for {self.reference!r}: {error_text(exc)}"
            ) from None
        for part in path.split("."):
            try:
                obj = getattr(obj, part)
            except AttributeError:
                raise TargetUnavailableError(
                    f"{self.reference!r}: module {module_name!r} has no {path!r}") from None
        if not callable(obj):
            raise TargetUnavailableError(f"{self.reference!r} is a {type(obj).__name__}, "
                                         f"not a function")
        return obj  # type: ignore[no-any-return]

    def resolve(self) -> Callable[..., Any]:
        function = self.find()
        args, kwargs = tuple(self.args), dict(self.kwargs)
        try:
            wants_context = "context" in inspect.signature(function).parameters \
                and "context" not in kwargs
        except (TypeError, ValueError):  # builtins without a signature
            wants_context = False

        def call(context: Any) -> Any:
            if wants_context:
                return function(*args, context=context, **kwargs)
            return function(*args, **kwargs)

        call.__qualname__ = call.__name__ = self.reference
        return call

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FunctionRef) and other.to_data() == self.to_data()

    def __hash__(self) -> int:
        return hash(self.reference)

    def __repr__(self) -> str:
        extra = "".join(f", {k}={v!r}" for k, v in (("args", self.args),
                                                    ("kwargs", self.kwargs)) if v)
        return f"FunctionRef({self.reference!r}{extra})"


register_kind(FunctionRef.kind, FunctionRef.from_data)
