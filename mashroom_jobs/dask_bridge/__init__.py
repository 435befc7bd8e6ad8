"""Running jobs on a Dask cluster (``distributed``): the scheduling stays in the kernel.

:class:`DaskBackend` is the :class:`~mashroom_jobs.core.remote.RemoteBackend` of a
``distributed.Client`` (one the user gives, ``schedule_job(..., executor=client)``)
or of an address the service connects to itself (``dask_address``: ``"tcp://host:8786"``,
or ``"local"`` for a ``LocalCluster`` the service starts and owns).  Only a
:class:`~mashroom_jobs.core.remote.RemoteCall` travels, pickled here with cloudpickle;
on the worker :func:`run_pickled` unpickles it and :func:`~mashroom_jobs.core.remote.execute`
runs it and reports back.  Timing, bookkeeping and history stay in the kernel.

Nothing touches the network on the caller's thread (the timer's, for a fire):
:meth:`DaskBackend.submit` queues the call for the backend's sender thread, which
pickles it, connects (or reconnects) when it must, and hands it to the client.
A connection the service owns is rebuilt when it was lost: a run that finds the
scheduler away fails at once, saying so, and a later fire connects again.

:class:`DaskClaimer` decides which kernel runs an exclusive job's fire when several
kernels (on any machines) share one scheduler: see its docstring.

This package imports nothing of ``distributed`` until a backend connects.  Its modules:

- :mod:`.config`: ``dask_address`` parsing and the other settings-time checks;
- :mod:`.worker`: :func:`run_pickled`, what runs on the worker (nothing heavy imported);
- :mod:`.errors`: :class:`ClusterUnavailableError`, :class:`NotSentError`;
- :mod:`.futures`: :class:`~.futures.RemoteFuture`, the kernel's handle of one run;
- :mod:`.transport`: the backend's sender and receiver threads;
- :mod:`.backend`: :class:`DaskBackend`, its public methods and its connection;
- :mod:`.claims`: :class:`DaskClaimer`, exclusive fires claimed through the scheduler.
"""

from __future__ import annotations

from .backend import DaskBackend
from .claims import DaskClaimer
from .config import INSTALL_HINT as INSTALL_HINT  # public, outside __all__, as before
from .config import LOCAL, check_distributed, is_dask_client, parse_dask_address
from .config import SCHEMES as SCHEMES  # public, outside __all__, as before
from .errors import ClusterUnavailableError, NotSentError
from .futures import RemoteFuture as RemoteFuture  # public, outside __all__, as before
from .worker import run_pickled

__all__ = [
    "LOCAL", "ClusterUnavailableError", "DaskBackend", "DaskClaimer", "NotSentError",
    "check_distributed", "is_dask_client", "parse_dask_address", "run_pickled",
]
