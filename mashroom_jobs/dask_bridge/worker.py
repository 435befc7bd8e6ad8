"""What runs on the Dask worker: :func:`run_pickled`, the one function sent with every run.

It travels pickled by reference, so the worker imports it by name.  That name stays the
one it always had, ``mashroom_jobs.dask_bridge.run_pickled`` (see the end of this
module): the worker imports this package, whose modules import nothing heavy (nothing of
``distributed`` at import time), and this module only the core's remote-run helpers.
"""

from __future__ import annotations

import time
import traceback

from ..core.records import error_text
from ..core.remote import RemoteResult, execute

__all__ = ["dask_setup", "run_pickled", "worker_address"]


def worker_address() -> str | None:
    """The address of the Dask worker running this task, or None elsewhere."""
    try:
        from distributed import get_worker
    except ImportError:
        return None
    try:
        return str(get_worker().address)
    except ValueError:  # not in a Dask worker
        return None


def dask_setup(worker: object) -> None:
    """The worker preload of the LocalCluster the service starts (``dask_address='local'``):
    its worker processes ignore SIGINT.  Ctrl-C in a terminal reaches every process of the
    foreground group: each worker printed a KeyboardInterrupt traceback while the service,
    which owns them, was closing the cluster anyway."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def run_pickled(payload: bytes) -> RemoteResult:
    """On the worker: unpickle a :class:`RemoteCall` and :func:`execute` it. Never raises.

    A call that cannot be unpickled there (a module the worker lacks) is a failed
    result saying so, not a failed task.
    """
    import pickle

    started, t0 = time.time(), time.perf_counter()
    try:
        call = pickle.loads(payload)
    except BaseException as exc:  # anything an unpickled __reduce__ may raise
        return RemoteResult(
            started, (time.perf_counter() - t0) * 1000.0,
            f"could not be loaded on the Dask worker: {error_text(exc)} (the worker needs "
            f"the modules the job is defined in)",
            traceback.format_exc(), "", worker_address(),
        )
    return execute(call, worker_address())
