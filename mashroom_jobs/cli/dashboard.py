"""``mashroom-jobs dashboard``: serve the jobs dashboard notebook with Voila."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from typing import Any

from .options import CommandFailure, UsageFailure


def dashboard_command(args: argparse.Namespace) -> int:
    # Voila's app runs in this process, in the foreground: Ctrl-C and SIGTERM reach it
    # directly and it shuts its kernels down, exit codes need no relaying, and every flag is
    # checked here before Voila starts. A subprocess would add a process and signal
    # forwarding for nothing.
    try:
        from voila.app import Voila
    except ImportError:
        raise UsageFailure(
            "the dashboard needs Voila: pip install 'mashroom-jobs[dashboard]'"
        ) from None
    from ..dashboards import JOBS_DASHBOARD

    if not JOBS_DASHBOARD.is_file():
        raise CommandFailure(f"the dashboard notebook {JOBS_DASHBOARD} is missing from the "
                             f"installed package: reinstall mashroom-jobs")
    port = _free_dashboard_port(args.ip, args.port)
    token = args.token or _new_token()
    url = f"http://{_url_host(args.ip)}:{port}/?token={token}"
    argv = [
        str(JOBS_DASHBOARD),
        f"--Voila.ip={args.ip}",
        f"--Voila.port={port}",
        "--Voila.port_retries=0",  # the port checked above, or an error: never another one
        f"--Voila.token={token}",
        "--Voila.open_browser=False",  # Voila would open the address without the token
    ]
    # the kernels' working folder (see the notebook): where the command was started
    os.environ["MASHROOM_JOBS_DASHBOARD_CWD"] = os.getcwd()
    print(f"mashroom-jobs dashboard: serving {url} (Ctrl-C stops it)", file=sys.stderr,
          flush=True)
    if not args.no_browser:
        browser_url = f"http://{_url_host(args.ip, local=True)}:{port}/?token={token}"
        threading.Thread(target=_open_when_serving, args=(browser_url, args.ip, port),
                         name="mashroom-jobs-dashboard-browser", daemon=True).start()
    previous = _interruptible()
    try:
        Voila.launch_instance(argv=argv)
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    return 0


def _interruptible() -> Any:
    """Let SIGINT stop the server, as ``run`` does: a process started in the background by
    a non-interactive shell inherits SIGINT ignored, and Voila only handles SIGTERM itself.
    Returns the handler replaced (None when SIGINT was not ignored)."""
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.SIG_IGN):
        return None
    # KeyboardInterrupt in the IOLoop: Voila logs "Stopping..." and shuts its kernels down
    return signal.signal(signal.SIGINT, signal.default_int_handler)


def _new_token() -> str:
    import secrets

    return secrets.token_hex(24)


def _free_dashboard_port(host: str, port: int) -> int:
    """``port`` when ``host`` can listen on it (a free one for 0), else a usage error."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
        family, kind, proto, _name, address = infos[0]
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Voila's server
            sock.bind(address)
            return int(sock.getsockname()[1])
    except (OSError, UnicodeError) as exc:  # in use, no permission, unknown host
        raise UsageFailure(f"cannot serve the dashboard on {host}:{port}: {exc}") from None


def _url_host(host: str, local: bool = False) -> str:
    """The host part of the page's address: this machine's name (or, for a browser here,
    127.0.0.1) when listening on every interface."""
    import socket

    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1" if local else socket.gethostname()
    return f"[{host}]" if ":" in host else host


def _open_when_serving(url: str, host: str, port: int, timeout: float = 60.0) -> None:
    """Open ``url`` in a web browser once the server accepts connections (at most
    ``timeout`` seconds from now)."""
    import socket
    import time
    import webbrowser

    target = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((target, port), timeout=1):
                break
        except OSError:
            time.sleep(0.2)  # polling, with a deadline
    else:
        return
    webbrowser.open(url)
