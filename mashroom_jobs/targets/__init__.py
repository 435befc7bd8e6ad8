"""What a job runs, as data where it can be: a reference to an importable function
(:class:`FunctionRef`, or the string ``"package.module:function"``), a command line
(:class:`Command`) or a notebook with parameters (:class:`Notebook`).

Each target describes itself, becomes JSON and back (:func:`target_from_data`), and
resolves to the callback the runner calls (``target.resolve()``; it raises
:class:`~mashroom_jobs.TargetUnavailableError` when the target cannot be found now: a
module gone, a command not installed, a notebook missing).  The same targets run as
ordinary in-kernel jobs and as durable jobs (definitions stored in the job store, run
by any process attached to it); plain Python callables run in-kernel only.

The core knows nothing of targets: they are callbacks to it.  Nothing here imports
Jupyter; the notebook target imports its executor only when it runs.
"""

from __future__ import annotations

from .base import Target, TargetData, register_kind, target_from_data
from .coerce import as_target, durable_target
from .command import Command
from .function import FunctionRef
from .notebook import Notebook

__all__ = [
    "Command", "FunctionRef", "Notebook", "Target", "TargetData", "as_target",
    "durable_target", "register_kind", "target_from_data",
]
