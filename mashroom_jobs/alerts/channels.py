"""Where alerts go: apprise URLs (``mailto://``, ``json://``, Slack, Teams, ntfy, ...),
behind a one-method interface (:class:`Channel`) so that the rest never imports apprise.

apprise is an optional dependency (``pip install 'mashroom-jobs[alerts]'``), imported
only when an alert URL is configured.  An URL's secrets (passwords, tokens) are never
logged: messages name it as apprise's privacy form (``json://127.0.0.1:8000/...``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

__all__ = ["AppriseChannel", "Channel", "check_alert_urls", "private_url"]


class Channel(Protocol):
    """Sends one alert to one URL."""

    def send(self, url: str, title: str, body: str) -> str | None:
        """Send; None when it went, else why not (one line, no secrets)."""


def _apprise() -> Any:
    try:
        import apprise
    except ImportError:
        raise ImportError("alert URLs need apprise: pip install 'mashroom-jobs[alerts]'"
                          ) from None
    return apprise


def _added(url: str) -> Any:
    """An Apprise object holding ``url``, or None when apprise cannot read it."""
    apprise = _apprise()
    notifier = apprise.Apprise()
    return notifier if notifier.add(url) else None


def private_url(url: str) -> str:
    """``url`` without its secrets, as apprise shows it (or its scheme alone)."""
    try:
        notifier = _added(url)
        if notifier is not None:
            return str(notifier[0].url(privacy=True))
    except Exception:  # (it is only for a message)
        pass
    return url.split("://", 1)[0] + "://..."


def check_alert_urls(urls: Sequence[str], what: str) -> None:
    """Raise ``ValueError`` naming the first URL of ``urls`` apprise cannot read (and
    ``ImportError`` when apprise is not installed)."""
    for url in urls:
        if not isinstance(url, str) or not url.strip():
            raise ValueError(f"{what} must be apprise URLs (such as 'mailto://user:pass@host' "
                             f"or 'json://host/path'), got {url!r}")
        if _added(url) is None:
            scheme = url.split("://", 1)[0] if "://" in url else url[:20]
            raise ValueError(
                f"{what}: apprise cannot read the URL {scheme + '://...'!r} (an unknown "
                f"scheme, or a part missing); see https://github.com/caronc/apprise/wiki for "
                f"the form of each service's URL")


class AppriseChannel:
    """Sends through apprise, each URL on its own (one failing URL stops no other), with
    apprise's own reason when it fails."""

    def send(self, url: str, title: str, body: str) -> str | None:
        apprise = _apprise()
        notifier = _added(url)
        if notifier is None:
            return "apprise cannot read this URL"
        with apprise.LogCapture(level=apprise.logging.WARNING) as captured:
            try:
                sent = notifier.notify(title=title, body=body)
            except Exception as exc:  # a plugin's bug must not reach a run or a host
                return f"{type(exc).__name__}: {exc}"
        if sent:
            return None
        lines = [line.strip() for line in captured.getvalue().splitlines() if line.strip()]
        return " / ".join(lines[-3:]) or "apprise could not send it"
