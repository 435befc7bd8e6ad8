"""The target protocol, its JSON form, and turning what ``schedule_job`` is given into a
target.

A target's data is a JSON object with a ``kind`` (``"function"``, ``"command"``,
``"notebook"``) and the kind's own fields.  :func:`target_from_data` dispatches on the
kind to the class registered for it (:func:`register_kind`); a kind nobody registered is
an error naming it, so a store written by a newer version is parked, not misread.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Protocol, runtime_checkable

from ..core.errors import TargetError

__all__ = ["Target", "TargetData", "check_json", "register_kind", "target_from_data"]

#: a target as data: JSON-serializable, with a "kind"
TargetData = dict[str, Any]


@runtime_checkable
class Target(Protocol):
    """What a job runs, as data (see the package docstring)."""

    #: the kind's name in the target's data
    kind: ClassVar[str]

    def to_data(self) -> TargetData:
        """The target as JSON-serializable data (``target_from_data`` reads it back)."""

    def describe(self) -> str:
        """One short line for tables and the panel (``command: rsync -a src dst``)."""

    def resolve(self) -> Callable[..., Any]:
        """The callback the runner calls, taking the job's context.  Raises
        :class:`~mashroom_jobs.TargetUnavailableError` when it cannot be found now."""


_KINDS: dict[str, Callable[[Mapping[str, Any]], Target]] = {}


def register_kind(kind: str, from_data: Callable[[Mapping[str, Any]], Target]) -> None:
    """Read targets of ``kind`` with ``from_data`` (each target module registers its own)."""
    _KINDS[kind] = from_data


def target_from_data(data: Mapping[str, Any]) -> Target:
    """The target ``data`` describes.

    Raises
    ------
    TargetError
        When it is not a target's data, or of a kind this version does not know.
    """
    if not isinstance(data, Mapping):
        raise TargetError(f"a target must be a JSON object, got {type(data).__name__}")
    kind = data.get("kind")
    reader = _KINDS.get(kind) if isinstance(kind, str) else None
    if reader is None:
        known = ", ".join(sorted(_KINDS))
        raise TargetError(f"unknown target kind {kind!r} (known: {known})")
    return reader(data)


def check_json(value: Any, what: str) -> Any:
    """``value`` if it survives a JSON round trip unchanged; else an error naming ``what``
    and the first key whose value is not JSON."""
    def find(item: Any, path: str) -> str | None:
        if item is None or isinstance(item, (bool, str)):
            return None
        if isinstance(item, (int, float)):
            return None if item == item and item not in (float("inf"), float("-inf")) \
                else f"{path} is {item!r}, which JSON cannot hold"
        if isinstance(item, (list, tuple)):
            return next((bad for i, x in enumerate(item)
                         if (bad := find(x, f"{path}[{i}]")) is not None), None)
        if isinstance(item, dict):
            for key, x in item.items():
                if not isinstance(key, str):
                    return f"{path} has the key {key!r}, which is not a string"
                bad = find(x, f"{path}[{key!r}]")
                if bad is not None:
                    return bad
            return None
        return f"{path} is a {type(item).__name__} ({item!r:.60}), which is not JSON"

    bad = find(value, what)
    if bad is not None:
        raise TargetError(f"{bad}: a job's arguments and parameters are stored as JSON "
                          f"(strings, numbers, booleans, None, lists and dicts of them)")
    return json.loads(json.dumps(value))
