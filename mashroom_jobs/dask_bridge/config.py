"""Settings-time checks of the Dask bridge: a ``dask_address`` parsed into full form,
whether ``distributed`` is installed, whether an ``executor=`` is a ``distributed.Client``.

The settings, the CLI and the service call these before any backend exists, so this
module imports nothing of ``distributed`` (nor of the rest of the bridge).
"""

from __future__ import annotations

import importlib.util
import re

__all__ = [
    "INSTALL_HINT", "LOCAL", "SCHEMES", "check_distributed", "is_dask_client",
    "parse_dask_address",
]

#: ``dask_address`` value for a LocalCluster the service starts and owns
LOCAL = "local"
#: the comm protocols a scheduler address may name (distributed's registry)
SCHEMES = ("tcp", "tls", "ws", "wss", "ucx")
INSTALL_HINT = "pip install 'mashroom-jobs[dask]'"

_ADDRESS = re.compile(
    r"^(?:(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://)?"
    r"(?P<host>\[[0-9A-Fa-f:.]+\]|[^\s:/\[\]@]+)"
    r"(?::(?P<port>[^/]*))?/?$"
)


def parse_dask_address(address: object) -> str:
    """Check a ``dask_address`` and return it in full form.

    Parameters
    ----------
    address : str
        ``""`` (no cluster), ``"local"`` (a ``LocalCluster`` the service owns),
        ``"tcp://host:8786"`` (or ``tls://``, ``ws://``, ``wss://``, ``ucx://``), or
        ``"host:8786"`` (meaning ``tcp://``); IPv6 hosts in brackets.

    Returns
    -------
    str
        The address, ``tcp://`` added to a bare ``host:port``.

    Raises
    ------
    ValueError
        Naming the address and what is wrong with it.
    """
    if not isinstance(address, str):
        raise ValueError(
            f"dask_address must be a string such as 'tcp://host:8786' or 'local', "
            f"got {type(address).__name__} {address!r}"
        )
    text = address.strip()
    if text in ("", LOCAL):
        return text
    example = "expected 'local' or a scheduler address such as 'tcp://host:8786'"
    match = _ADDRESS.match(text)
    if match is None:
        raise ValueError(f"Invalid dask_address {address!r}: {example}")
    scheme = (match["scheme"] or "tcp").lower()
    if scheme not in SCHEMES:
        raise ValueError(
            f"Invalid dask_address {address!r}: unknown protocol {match['scheme']!r} "
            f"(expected one of {', '.join(SCHEMES)}); {example}"
        )
    port = match["port"]
    if port is None or port == "":
        raise ValueError(f"Invalid dask_address {address!r}: no port; {example}")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(
            f"Invalid dask_address {address!r}: port {port!r} is not a number in 1-65535"
        )
    return f"{scheme}://{match['host']}:{int(port)}"


def check_distributed(what: str) -> None:
    """Raise ImportError naming ``what`` when ``distributed`` is not installed."""
    if importlib.util.find_spec("distributed") is None:
        raise ImportError(f"{what} needs the distributed package: {INSTALL_HINT}")


def is_dask_client(obj: object) -> bool:
    """True for a ``distributed.Client``, without importing distributed (an object of it
    exists only once something imported it).

    Raises
    ------
    TypeError
        For ``client.get_executor()``: its client is not public, so the Client is needed.
    """
    import sys

    distributed = sys.modules.get("distributed")
    if distributed is None:
        return False
    from distributed.cfexecutor import ClientExecutor

    if isinstance(obj, ClientExecutor):
        raise TypeError("executor=client.get_executor() is not supported: pass the "
                        "distributed.Client itself (executor=client)")
    return isinstance(obj, distributed.Client)
