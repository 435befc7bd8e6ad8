"""The errors of a run on the Dask cluster, in a module of their own: the backend, the
transport that sends runs and the claimer all raise or report them."""

from __future__ import annotations

from ..core.errors import MashroomJobsError

__all__ = ["ClusterUnavailableError", "NotSentError"]


class ClusterUnavailableError(MashroomJobsError):
    """The cluster cannot take a run now (unreachable, reconnecting, its client closed)."""


class NotSentError(MashroomJobsError):
    """A run could not be sent to the cluster (its callback does not pickle)."""
