"""Time zones: IANA names, tzinfo objects and the machine's local zone."""

from __future__ import annotations

import functools
import os
from datetime import datetime, timezone, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..errors import InvalidTimezoneError

__all__ = ["local_zone", "resolve_zone", "zone_name"]

UTC = timezone.utc


@functools.lru_cache(maxsize=1)
def local_zone() -> tzinfo:
    """The machine's local time zone, as an IANA zone when it can be found.

    Looks at ``TZ``, ``/etc/timezone`` and the ``/etc/localtime`` link; falls
    back to ``/etc/localtime`` itself, then to the current fixed UTC offset.
    """
    candidates: list[str] = []
    if os.environ.get("TZ"):
        candidates.append(os.environ["TZ"].lstrip(":"))
    try:
        candidates.append(Path("/etc/timezone").read_text().strip())
    except OSError:
        pass
    try:
        target = os.path.realpath("/etc/localtime")
        if "zoneinfo/" in target:
            candidates.append(target.split("zoneinfo/", 1)[1])
    except OSError:
        pass
    for key in candidates:
        try:
            return ZoneInfo(key)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            continue
    try:
        with open("/etc/localtime", "rb") as f:
            return ZoneInfo.from_file(f, key="localtime")
    except OSError:
        pass
    return datetime.now().astimezone().tzinfo or UTC


def resolve_zone(zone: str | tzinfo | None) -> tzinfo:
    """Turn an IANA name, a tzinfo or None (the local zone) into a tzinfo.

    Raises
    ------
    InvalidTimezoneError
        When the name is unknown or ``zone`` is neither a string nor a tzinfo.
    """
    if zone is None or zone == "":
        return local_zone()
    if isinstance(zone, tzinfo):
        return zone
    if not isinstance(zone, str):
        raise InvalidTimezoneError(
            zone, f"expected an IANA name or tzinfo, got {type(zone).__name__}"
        )
    if zone.upper() == "UTC":
        return ZoneInfo("UTC")
    try:
        return ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidTimezoneError(zone) from None


def zone_name(zone: tzinfo) -> str:
    """A readable name of a zone: its IANA key when it has one."""
    key = getattr(zone, "key", None)
    if isinstance(key, str):
        return key
    return str(zone)
