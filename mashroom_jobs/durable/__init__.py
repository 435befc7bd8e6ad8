"""Durable jobs: definitions stored as data in the job store, hosted by every process
attached to it.

A durable job is a :class:`JobDefinition` (its schedule, its target as data, its run
options, paused or not, its catch-up policy) kept in the store by name.  Every service
that hosts durable jobs (``c.BackgroundJobService.durable_jobs``, on by default with a
store) runs a :class:`DurableHost`: it schedules the definitions as exclusive jobs (each
fire runs once across hosts), follows the changes other processes make within about a
second, catches up fires missed while no process ran, parks a job whose target cannot be
found (never deletes it), obeys run and stop commands, and writes a heartbeat.
"""

from __future__ import annotations

from .catchup import CatchUp, plan_catch_up
from .definitions import JobDefinition
from .host import DurableHost, HostedJobs, ParkedJob

__all__ = ["CatchUp", "DurableHost", "HostedJobs", "JobDefinition", "ParkedJob",
           "plan_catch_up"]
